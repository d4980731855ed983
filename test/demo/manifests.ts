/**
 * The demo's objects: the page ConfigMap, one sample pod per node (a busybox web server) and the Service in
 * front of them. Each pod serves the ConfigMap's page at `/` (a symlink into the ConfigMap volume, so an edit of
 * the ConfigMap reaches it) and `/whoami`: its name, IP and node from the downward API, so an answer through
 * the Service's ClusterIP tells which pod, on which node, served it.
 */
import type { V1ConfigMap, V1Pod, V1Service } from "@kubernetes/client-node";

export const APP = "hello";
export const PAGE = "hello-page";
export const SERVICE = "hello";

export function pageConfigMap(text: string): V1ConfigMap {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: PAGE, namespace: "default" }, data: { "index.html": `${text}\n` } };
}

/** The sample pod for one node: placed by the control plane's binder through the node's hostname label. */
export function helloPod(name: string, nodeName: string): V1Pod {
  const script = [
    "mkdir -p /srv",
    "ln -s /www/index.html /srv/index.html",
    'echo "$POD_NAME $POD_IP $NODE_NAME" > /srv/whoami',
    'echo "serving /www and /whoami on :8080 as $POD_NAME on $NODE_NAME"',
    "exec httpd -f -vv -p 8080 -h /srv",
  ].join(" && ");
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: APP } },
    spec: {
      nodeSelector: { "kubernetes.io/hostname": nodeName },
      terminationGracePeriodSeconds: 5,
      volumes: [{ name: "page", configMap: { name: PAGE } }],
      containers: [
        {
          name: "web",
          image: "localhost/busybox:1",
          imagePullPolicy: "IfNotPresent",
          command: ["sh", "-c", script],
          env: [
            { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
            { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
          ],
          ports: [{ name: "http", containerPort: 8080 }],
          volumeMounts: [{ name: "page", mountPath: "/www", readOnly: true }],
          // Ready only once the kubelet's prober has had an answer from the page.
          readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 2 },
          lifecycle: { postStart: { exec: { command: ["sh", "-c", "date > /tmp/started-at"] } } },
          resources: { requests: { cpu: "50m", memory: "16Mi" }, limits: { memory: "32Mi" } },
        },
      ],
    },
  };
}

export function helloService(): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: SERVICE, namespace: "default" },
    spec: { selector: { app: APP }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
  };
}

/** A `/whoami` answer: `<pod> <ip> <node>`. */
export function parseWhoami(body: string): { pod: string; ip: string; node: string } | undefined {
  const [pod, ip, node, ...rest] = body.trim().split(/\s+/);
  return pod && ip && node && rest.length === 0 ? { pod, ip, node } : undefined;
}
