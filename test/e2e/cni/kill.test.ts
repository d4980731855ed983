/**
 * 200 pod sandboxes created and removed through containerd on the one-shot plugin (no daemon, so a kill lands
 * in the process doing the work), with every 20th ADD SIGKILLed at a different moment: after the runtime's
 * own cleanup (DEL) and a GC, no address and no veth pair is left.
 */
import { randomUUID } from "node:crypto";
import { readdir, writeFile, chmod, unlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CniNode, LAUNCHER } from "../../harness/cni-node.ts";
import type { Input, PodSandboxConfig } from "../../../kubelet/cri/types.ts";
import { removeCgroupTree } from "../../../src-shared/cgroups.ts";

const cni = new CniNode({ podSubnet: "10.89.0.0/24", daemon: false });

beforeAll(async () => {
  await cni.start();
  // The plugin containerd runs becomes a wrapper that kills every 20th ADD after a delay that grows each
  // time, so the kills land in different phases (Node start, IPAM, netlink, the pod side).
  const counter = join(cni.node.dir, "add-count");
  const wrapper = `#!/bin/bash
if [ "$CNI_COMMAND" = ADD ]; then
  n=$(( $(cat ${counter} 2>/dev/null || echo 0) + 1 )); echo $n > ${counter}
  if [ $(( n % 20 )) = 0 ]; then
    exec 3<&0
    ${LAUNCHER} <&3 &
    pid=$!
    sleep 0.$(printf %03d $(( 10 + (n / 20) * 12 )))
    kill -9 $pid 2>/dev/null
    wait $pid
    echo '{"cniVersion":"1.0.0","code":11,"msg":"killed by the test"}'
    exit 1
  fi
fi
exec ${LAUNCHER}
`;
  const path = join(cni.binDir, "deckhand-bridge");
  await unlink(path);
  await writeFile(path, wrapper);
  await chmod(path, 0o755);
}, 180_000);

afterAll(async () => {
  await cni.teardown();
});

function podConfig(i: number): Input<PodSandboxConfig> {
  const uid = randomUUID();
  return {
    metadata: { name: `k${i}`, namespace: "kill", uid, attempt: 0 },
    log_directory: `/var/log/pods/kill_k${i}_${uid}`,
    linux: { cgroup_parent: `${cni.node.cgroupRoot}/kubepods/besteffort/pod${uid}`, security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
  };
}

it("leaks no address after 200 ADD/DEL cycles with a SIGKILL every 20th ADD, once GC ran", async () => {
  const cri = cni.node.criClient();
  let failed = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const config = podConfig(i);
    try {
      const { pod_sandbox_id: id } = await cri.runtime("RunPodSandbox", { config });
      const status = await cri.runtime("PodSandboxStatus", { pod_sandbox_id: id });
      seen.add(status.status?.network?.ip ?? "");
      await cri.runtime("StopPodSandbox", { pod_sandbox_id: id });
      await cri.runtime("RemovePodSandbox", { pod_sandbox_id: id });
    } catch (err) {
      failed++;
      expect(String(err)).toMatch(/killed by the test|deckhand/);
    } finally {
      await removeCgroupTree(config.linux?.cgroup_parent ?? "/nonexistent");
    }
  }
  expect(failed).toBe(10);
  // Round-robin allocation walked the range rather than reusing the same address.
  expect(seen.size).toBeGreaterThan(100);
  expect((await cri.runtime("ListPodSandbox", {})).items).toEqual([]);

  const gc = await cni.invoke({ CNI_COMMAND: "GC" }, {
    cniVersion: "1.1.0",
    name: "deckhand",
    ...cni.pluginConf(),
    "cni.dev/valid-attachments": [],
  });
  expect(gc.code, gc.stdout + gc.stderr).toBe(0);
  const files = await readdir(cni.node.hostPath("/var/lib/cni/networks/deckhand"));
  expect(files.filter((f) => /^\d/.test(f) || f.startsWith(".deckhand-"))).toEqual([]);
  const links = await cni.node.exec("ip", ["-o", "link", "show", "master", "cni0"]);
  expect(links.stdout.trim()).toBe("");
}, 600_000);
