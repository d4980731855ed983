import { describe, expect, it } from "vitest";
import { parseStreamPath, streamOptions } from "../../../../kubelet/server/streaming.ts";

describe("streaming routes", () => {
  it("read the pod, its optional uid and the container from the path", () => {
    expect(parseStreamPath("/exec/ns/p/c")).toEqual({ kind: "exec", namespace: "ns", pod: "p", container: "c" });
    expect(parseStreamPath("/attach/ns/p/uid-1/c")).toEqual({ kind: "attach", namespace: "ns", pod: "p", uid: "uid-1", container: "c" });
    expect(parseStreamPath("/portForward/ns/p")).toEqual({ kind: "portForward", namespace: "ns", pod: "p" });
    expect(parseStreamPath("/pods")).toBeUndefined();
    expect(() => parseStreamPath("/exec/ns/p")).toThrow("expected /exec/{podNamespace}/{podID}[/{uid}]/{containerName}");
  });

  it("take upstream's options: at least one stream, no stderr with a TTY, a command for exec, valid ports", () => {
    const q = (s: string) => new URLSearchParams(s);
    expect(streamOptions("exec", q("command=sh&command=-c&command=true&stdout=true&stderr=1&tty=false"))).toEqual({ command: ["sh", "-c", "true"], stdin: false, stdout: true, stderr: true, tty: false, ports: [] });
    expect(streamOptions("exec", q("command=sh&stdin=true&stdout=true&stderr=true&tty=true")).stderr).toBe(false);
    expect(() => streamOptions("exec", q("command=sh"))).toThrow("you must specify at least 1 of stdin, stdout, stderr");
    expect(() => streamOptions("exec", q("stdout=true"))).toThrow("you must specify a command");
    expect(streamOptions("portForward", q("port=80&port=8080")).ports).toEqual([80, 8080]);
    expect(() => streamOptions("portForward", q("port=http"))).toThrow('invalid port "http"');
  });
});
