/**
 * The shared Prometheus text registry: the exposition format as upstream's component-base writes it (HELP with
 * the stability level, labels in the order given, histogram buckets with `le` last), label-only metrics that
 * show nothing until observed, and dropping a series.
 */
import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram } from "../../../src-shared/metrics.ts";

describe("metrics registry", () => {
  it("renders counters and gauges with their stability level and labels", () => {
    const c = new Counter("things_total", "Things.", { stabilityLevel: "BETA" });
    expect(c.render()).toBe("");
    c.inc({ b: "2", a: "x\"y" });
    c.inc({ b: "2", a: "x\"y" }, 2);
    expect(c.render()).toBe('# HELP things_total [BETA] Things.\n# TYPE things_total counter\nthings_total{b="2",a="x\\"y"} 3\n');
    const g = new Gauge("level", "Level.");
    g.set(1.5);
    expect(g.render()).toBe("# HELP level [ALPHA] Level.\n# TYPE level gauge\nlevel 1.5\n");
  });

  it("shows an unlabelled histogram empty from the start, a labelled one only once observed", () => {
    const plain = new Histogram("d_seconds", "D.", [1]);
    expect(plain.render()).toBe('# HELP d_seconds [ALPHA] D.\n# TYPE d_seconds histogram\nd_seconds_bucket{le="1"} 0\nd_seconds_bucket{le="+Inf"} 0\nd_seconds_sum 0\nd_seconds_count 0\n');
    const vec = new Histogram("v_seconds", "V.", [1], { labelled: true });
    expect(vec.render()).toBe("");
    vec.observe(2, { k: "a" });
    expect(vec.render()).toBe('# HELP v_seconds [ALPHA] V.\n# TYPE v_seconds histogram\nv_seconds_bucket{k="a",le="1"} 0\nv_seconds_bucket{k="a",le="+Inf"} 1\nv_seconds_sum{k="a"} 2\nv_seconds_count{k="a"} 1\n');
  });

  it("drops one series", () => {
    const c = new Counter("c_total", "C.", { labelled: true });
    c.inc({ k: "a" });
    c.inc({ k: "b" });
    c.delete({ k: "a" });
    expect(c.get({ k: "a" })).toBe(0);
    expect(c.render()).toBe('# HELP c_total [ALPHA] C.\n# TYPE c_total counter\nc_total{k="b"} 1\n');
  });

  it("a bound series (with) updates the same series as the labels would, and comes back after a delete", () => {
    const c = new Counter("runs_total", "Runs.", { labelled: true });
    const bound = c.with({ pod: "a", result: "ok" });
    bound.inc();
    c.inc({ pod: "a", result: "ok" });
    bound.inc(3);
    expect(c.get({ pod: "a", result: "ok" })).toBe(5);
    c.delete({ pod: "a", result: "ok" });
    expect(c.render()).toBe("");
    bound.inc();
    expect(c.render()).toBe('# HELP runs_total [ALPHA] Runs.\n# TYPE runs_total counter\nruns_total{pod="a",result="ok"} 1\n');

    const h = new Histogram("t_seconds", "T.", [1], { labelled: true });
    const hb = h.with({ pod: "a" });
    hb.observe(0.5);
    h.observe(2, { pod: "a" });
    expect(h.count({ pod: "a" })).toBe(2);
    expect(h.render()).toContain('t_seconds_bucket{pod="a",le="1"} 1\n');
  });
});
