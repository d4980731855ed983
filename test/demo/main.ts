/**
 * `npm run demo`: a sandbox worker node on this machine (its own network namespace and containerd) running one
 * pod through deckhand's CRI client: a busybox web server, fetched from the node over the pod network.
 * It keeps running until Ctrl-C; `--once` checks the pod and tears everything down.
 *
 * Until the kubelet exists (issue 5) this drives CRI directly, as the kubelet will.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeSandbox } from "../harness/node-sandbox.ts";
import type { Input, PodSandboxConfig } from "../../kubelet/cri/types.ts";

const { values } = parseArgs({ options: { once: { type: "boolean", default: false } } });
const started = Date.now();
const say = (text: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(2)}s] ${text}`);

const node = new NodeSandbox();
let tornDown = false;
async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  say(`tearing down node ${node.name}`);
  await node.teardown();
  say("done: nothing left behind");
}

async function main(): Promise<void> {
  say("starting a sandbox node: network namespace, mount namespace, containerd, test images");
  await node.start();
  const cri = node.criClient();
  const version = await cri.runtime("Version", {});
  say(`node ${node.name} is up: ${version.runtime_name} ${version.runtime_version} (CRI ${version.runtime_api_version}), netns ${node.netnsPath}`);

  const uid = randomUUID();
  const config: Input<PodSandboxConfig> = {
    metadata: { name: "hello", namespace: "default", uid, attempt: 0 },
    hostname: "hello",
    log_directory: `/var/log/pods/default_hello_${uid}`,
    port_mappings: [{ protocol: "TCP", container_port: 8080 }],
    labels: { "io.kubernetes.pod.name": "hello", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": uid },
    linux: {
      cgroup_parent: `${node.cgroupRoot}/kubepods/besteffort/pod${uid}`,
      security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
    },
  };
  const t0 = Date.now();
  const { pod_sandbox_id: sandboxId } = await cri.runtime("RunPodSandbox", { config });
  const sandbox = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: sandboxId });
  const podIp = sandbox.status?.network?.ip ?? "?";
  say(`RunPodSandbox: sandbox ${sandboxId.slice(0, 12)} with pod IP ${podIp} (${Date.now() - t0} ms)`);

  const script = "mkdir -p /www && echo \"hello from pod $(hostname)\" > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www";
  const t1 = Date.now();
  const { container_id: containerId } = await cri.runtime("CreateContainer", {
    pod_sandbox_id: sandboxId,
    config: {
      metadata: { name: "web", attempt: 0 },
      image: { image: "localhost/busybox:1" },
      command: ["sh", "-c", script],
      log_path: "web/0.log",
      labels: { "io.kubernetes.container.name": "web" },
      // Upstream repeats the namespace modes per container; without them the container joins the pause's PID namespace.
      linux: { security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
    },
    sandbox_config: config,
  });
  await cri.runtime("StartContainer", { container_id: containerId });
  say(`CreateContainer + StartContainer: container ${containerId.slice(0, 12)} running busybox httpd (${Date.now() - t1} ms)`);

  let body = "";
  for (let i = 0; i < 50 && !body.includes("hello"); i++) {
    const res = await node.exec("timeout", ["2", "busybox", "wget", "-q", "-O", "-", `http://${podIp}:8080/`], { allowFailure: true });
    body = res.stdout;
    if (!body.includes("hello")) await sleep(100);
  }
  if (!body.includes("hello")) throw new Error(`the pod did not answer on http://${podIp}:8080/`);
  say(`GET http://${podIp}:8080/ from the node answered: ${body.trim()}`);

  const exec = await cri.runtime("ExecSync", { container_id: containerId, cmd: ["ps", "-o", "pid,comm"], timeout: 5 });
  say(`ExecSync 'ps' in the container:\n${exec.stdout.toString().trimEnd().replace(/^/gm, "    ")}`);
  const stats = await cri.runtime("ContainerStats", { container_id: containerId });
  say(`ContainerStats: working set ${stats.stats?.memory?.working_set_bytes?.value ?? "?"} bytes`);
  say(`container log (CRI format) at ${node.hostPath(`/var/log/pods/default_hello_${uid}/web/0.log`)}`);

  if (values.once) {
    await teardown();
    return;
  }
  say(`running; try: nsenter --net=${node.netnsPath} busybox wget -q -O - http://${podIp}:8080/   (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await teardown();
}

try {
  await main();
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  await teardown().catch((e: unknown) => console.error(String(e)));
  process.exitCode = 1;
}
