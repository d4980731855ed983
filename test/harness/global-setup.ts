/**
 * Once per e2e run: refuse to start without root, clean what a crashed earlier run left, build the test images
 * (cached), and after every suite fail the run if anything was left on the machine.
 */
import { NodeSandbox } from "./node-sandbox.ts";
import { findLeaks, runTag, staleSandboxes, takeBaseline } from "./leaks.ts";
import { buildTestImages } from "./images.ts";

export default async function setup(): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) throw new Error("the e2e suites need root (network namespaces, cgroups, containerd)");
  for (const name of await staleSandboxes()) {
    console.warn(`e2e: removing ${name}, left by a run that is no longer alive`);
    await new NodeSandbox({ name }).teardown().catch((err: unknown) => console.warn(String(err)));
  }
  runTag(); // fixed here, before the workers start, so they inherit it
  const baseline = await takeBaseline();
  await buildTestImages();
  return async () => {
    const leaks = await findLeaks(baseline);
    if (leaks.length > 0) throw new Error(`e2e leak check: the suites left these behind:\n  ${leaks.join("\n  ")}`);
    console.log("e2e leak check: nothing left behind");
  };
}
