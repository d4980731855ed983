/**
 * client-go's REST client metrics (k8s.io/client-go/tools/metrics, registered by component-base): one
 * process-wide counter every KubeClient request and watch start adds to, as client-go's is global; each
 * component shows it on its /metrics.
 */
import { Counter } from "../metrics.ts";

/** rest_client_requests_total{code, method, host}: the answer's status code, or "<error>" when none came. */
export const restClientRequests = new Counter("rest_client_requests_total", "Number of HTTP requests, partitioned by status code, method, and host.", { labelled: true });

export function countRequest(code: number | undefined, method: string, host: string): void {
  restClientRequests.inc({ code: code === undefined || code === 0 ? "<error>" : String(code), method, host });
}
