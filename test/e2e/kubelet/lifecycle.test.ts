/**
 * Lifecycle hooks and termination messages end to end on a sandbox node, through the API: a postStart hook's
 * work seen inside the container; a failing postStart (upstream's event messages, the container killed and
 * restarted); preStop hooks (exec and httpGet) run before the container is signalled, seen from inside the
 * pod (the container's own TERM handler reports whether the hook had run, through its termination message;
 * the httpGet hook's request is recorded by a server in the pod); a preStop that would outlast the deletion's
 * grace period cut short by it; termination messages from the file (default and own path, 4 KiB tail) and from
 * the log (FallbackToLogsOnError).
 */
import type { CoreV1Event, V1Container, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { eventually, eventuallyGone } from "../../harness/wait.ts";
import { clusterWithOneNode, podsRef } from "../../harness/cluster-suite.ts";

const suite = clusterWithOneNode();
const IMAGE = "localhost/busybox:1";
/** A main process that ends at once on SIGTERM, writing what `onTerm` says first. */
const loop = (onTerm = "") => `trap '${onTerm} exit 0' TERM; while true; do sleep 0.2; done`;

function app(name: string, script: string, extra: Partial<V1Container> = {}): V1Container {
  return { name, image: IMAGE, imagePullPolicy: "IfNotPresent", command: ["sh", "-c", script], ...extra };
}

async function run(name: string, spec: Partial<NonNullable<V1Pod["spec"]>>): Promise<V1Pod> {
  return suite.cluster.client.create<V1Pod>(podsRef(), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: suite.node.name, terminationGracePeriodSeconds: 5, containers: [], ...spec },
  });
}

function podUntil(name: string, what: string, check: (p: V1Pod) => boolean, timeoutMs = 60_000): Promise<V1Pod> {
  return eventually(async () => {
    const p = await suite.cluster.client.get<V1Pod>(podsRef(name));
    return check(p) ? p : undefined;
  }, { message: `pod ${name}: ${what}`, timeoutMs });
}

const statusOf = (p: V1Pod, name: string) => p.status?.containerStatuses?.find((s) => s.name === name);
const idOf = (p: V1Pod, name: string) => (statusOf(p, name)?.containerID ?? "").replace(/^containerd:\/\//, "");

async function eventsOf(name: string): Promise<CoreV1Event[]> {
  const res = await suite.cluster.kubectl(["get", "events", "-n", "default", "--field-selector", `involvedObject.name=${name}`, "-o", "json"]);
  if (res.code !== 0) throw new Error(res.stderr);
  return (JSON.parse(res.stdout) as { items: CoreV1Event[] }).items;
}

function eventOf(name: string, reason: string): Promise<CoreV1Event> {
  return eventually(async () => (await eventsOf(name)).find((e) => e.reason === reason), { message: `a ${reason} event of ${name}` });
}

/** A command in a container through CRI ExecSync: its stdout, or undefined when it exits non-zero. */
async function execIn(containerId: string, cmd: string[]): Promise<string | undefined> {
  const res = await suite.node.sandbox.criClient().runtime("ExecSync", { container_id: containerId, cmd, timeout: 10 });
  return res.exit_code === 0 ? res.stdout.toString() : undefined;
}

async function remove(name: string, gracePeriodSeconds?: number): Promise<void> {
  await suite.cluster.client.delete(podsRef(name), gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }).catch(() => undefined);
}

const running = (name: string) => (p: V1Pod) => statusOf(p, name)?.state?.running !== undefined;

describe("lifecycle hooks", () => {
  it("runs postStart right after the start: what it wrote is in the container", async () => {
    await run("poststart-ok", { containers: [app("app", loop(), { lifecycle: { postStart: { exec: { command: ["sh", "-c", "echo hook-was-here > /tmp/poststart"] } } } })] });
    const p = await podUntil("poststart-ok", "running", running("app"));
    expect(await execIn(idOf(p, "app"), ["cat", "/tmp/poststart"])).toBe("hook-was-here\n");
    await remove("poststart-ok", 0);
  });

  it("kills and restarts a container whose postStart fails, with upstream's events", async () => {
    await run("poststart-fail", {
      containers: [app("app", loop(), { lifecycle: { postStart: { exec: { command: ["sh", "-c", "echo boom >&2; exit 3"] } } } })],
    });
    const failed = await eventOf("poststart-fail", "FailedPostStartHook");
    // The hook's output stays out of the event (it may hold secrets).
    expect(failed).toMatchObject({ type: "Warning", involvedObject: { fieldPath: "spec.containers{app}" }, message: "PostStartHook failed" });
    expect((await eventsOf("poststart-fail")).filter((e) => e.reason === "Killing").map((e) => e.message)).toContain("FailedPostStartHook");
    // Killed (SIGTERM ends the loop with 0) and started again.
    const p = await podUntil("poststart-fail", "restarted after the failed hook", (x) => (statusOf(x, "app")?.restartCount ?? 0) >= 1);
    expect(statusOf(p, "app")?.lastState?.terminated).toBeDefined();
    await remove("poststart-fail", 0);
  });

  it("runs an exec preStop before the container is signalled when a liveness probe kills it", async () => {
    // The TERM handler reports, as the termination message, whether the preStop hook had run by then.
    const onTerm = "if [ -f /tmp/prestop ]; then cat /tmp/prestop > /dev/termination-log; else echo TERM-before-preStop > /dev/termination-log; fi;";
    await run("prestop-exec", {
      containers: [
        app("app", loop(onTerm), {
          lifecycle: { preStop: { exec: { command: ["sh", "-c", "echo preStop-ran > /tmp/prestop"] } } },
          livenessProbe: { exec: { command: ["sh", "-c", "test ! -f /tmp/unhealthy"] }, periodSeconds: 1, failureThreshold: 1, terminationGracePeriodSeconds: 10 },
        }),
      ],
    });
    const p = await podUntil("prestop-exec", "running", running("app"));
    await execIn(idOf(p, "app"), ["touch", "/tmp/unhealthy"]);
    const after = await podUntil("prestop-exec", "restarted by liveness", (x) => (statusOf(x, "app")?.restartCount ?? 0) >= 1);
    expect(statusOf(after, "app")?.lastState?.terminated).toMatchObject({ exitCode: 0, message: "preStop-ran\n" });
    await remove("prestop-exec", 0);
  });

  it("runs an httpGet preStop against the pod's IP: a server in the pod records the request", async () => {
    const cgi = "#!/bin/sh\necho \"$REQUEST_METHOD $HTTP_USER_AGENT\" >> /tmp/hits\necho Content-Type: text/plain\necho\necho ok\n";
    await run("prestop-http", {
      containers: [
        app("app", loop(), {
          lifecycle: { preStop: { httpGet: { port: 8080, path: "/cgi-bin/hook" } } },
          livenessProbe: { exec: { command: ["sh", "-c", "test ! -f /tmp/unhealthy"] }, periodSeconds: 1, failureThreshold: 1 },
        }),
        app("recorder", `mkdir -p /www/cgi-bin && printf '${cgi.replace(/\n/g, "\\n")}' > /www/cgi-bin/hook && chmod +x /www/cgi-bin/hook && exec httpd -f -p 8080 -h /www`),
      ],
    });
    const p = await podUntil("prestop-http", "running", (x) => running("app")(x) && running("recorder")(x));
    expect(await execIn(idOf(p, "recorder"), ["cat", "/tmp/hits"])).toBeUndefined();
    await execIn(idOf(p, "app"), ["touch", "/tmp/unhealthy"]);
    await podUntil("prestop-http", "app restarted by liveness", (x) => (statusOf(x, "app")?.restartCount ?? 0) >= 1);
    expect(await execIn(idOf(p, "recorder"), ["cat", "/tmp/hits"])).toMatch(/^GET kube-lifecycle\/\d+\.\d+\n$/);
    await remove("prestop-http", 0);
  });

  it("gives a preStop hook no more than the deletion's grace period", async () => {
    // A hook that would run for 10 minutes, a grace period of 3 s: the hook is seen running inside the
    // container, then the container is stopped and the pod gone long before the hook could have ended.
    await run("prestop-grace", {
      terminationGracePeriodSeconds: 3,
      containers: [app("app", "trap '' TERM; while true; do sleep 0.2; done", { lifecycle: { preStop: { exec: { command: ["sh", "-c", "touch /tmp/in-prestop; sleep 600"] } } } })],
    });
    const p = await podUntil("prestop-grace", "running", running("app"));
    const id = idOf(p, "app");
    const deletedAt = Date.now();
    await remove("prestop-grace");
    await eventually(() => execIn(id, ["ls", "/tmp/in-prestop"]), { message: "the preStop hook running inside the container" });
    // 3 s for the hook, then StopContainer's minimum of 2 s before SIGKILL (the main process ignores TERM): the
    // pod goes after the grace period, and long before the hook's 10 minutes.
    await eventuallyGone(() => suite.cluster.client.get<V1Pod>(podsRef("prestop-grace")), { message: "the pod deleted", timeoutMs: 30_000 });
    const tookMs = Date.now() - deletedAt;
    expect(tookMs).toBeGreaterThanOrEqual(3_000);
    expect(tookMs).toBeLessThan(20_000);
  });
});

describe("termination messages", () => {
  const finished = (name: string, count: number) =>
    podUntil(name, "all containers terminated", (x) => (x.status?.containerStatuses ?? []).length === count && (x.status?.containerStatuses ?? []).every((s) => s.state?.terminated));
  /** HEAD, 5000 bytes, END: more than a container may leave (4 KiB, the end kept). */
  const long = "printf HEAD > /tmp/msg; head -c 5000 /dev/zero | tr '\\0' a >> /tmp/msg; printf END >> /tmp/msg; exit 1";

  it("reads the file (default path, an own path keeping the last 4 KiB) and the log under FallbackToLogsOnError", async () => {
    // Three containers: 12 KiB per pod leaves each its whole 4 KiB.
    await run("messages", {
      restartPolicy: "Never",
      containers: [
        app("default-path", "echo all done > /dev/termination-log"),
        app("own-path", long, { terminationMessagePath: "/tmp/msg" }),
        // One stream: stdout and stderr reach the log through separate pipes, in no set order.
        app("from-logs", "echo first; echo second; exit 2", { terminationMessagePolicy: "FallbackToLogsOnError" }),
      ],
    });
    const p = await finished("messages", 3);
    const terminated = (name: string) => statusOf(p, name)?.state?.terminated;
    expect(terminated("default-path")).toMatchObject({ exitCode: 0, reason: "Completed", message: "all done\n" });
    const own = terminated("own-path")?.message ?? "";
    expect(own).toBe(`${"a".repeat(4093)}END`);
    expect(terminated("from-logs")).toMatchObject({ exitCode: 2, message: "first\nsecond\n" });
    await remove("messages", 0);
  });

  it("prefers a written file to the log, and shares 12 KiB between a pod's containers", async () => {
    await run("messages-shared", {
      restartPolicy: "Never",
      containers: [
        app("file-wins", "echo from-log; echo from-file > /dev/termination-log; exit 4", { terminationMessagePolicy: "FallbackToLogsOnError" }),
        ...["a", "b", "c"].map((n) => app(`long-${n}`, long, { terminationMessagePath: "/tmp/msg" })),
      ],
    });
    const p = await finished("messages-shared", 4);
    expect(statusOf(p, "file-wins")?.state?.terminated).toMatchObject({ exitCode: 4, message: "from-file\n" });
    // 12 KiB / 4 containers: the first 3 KiB of each one's last 4 KiB (upstream's status normalisation).
    for (const n of ["a", "b", "c"]) expect(statusOf(p, `long-${n}`)?.state?.terminated?.message).toBe("a".repeat(3072));
    await remove("messages-shared", 0);
  });
});
