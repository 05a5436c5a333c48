// Validates custom resources against the CRD schemas that @kubernetes-models publishes
// (generated from prometheus-operator's and KEDA's own CRDs). Reads a JSON array of
// resources on stdin; prints one line per resource; exits 1 if any is invalid or unknown.
import { PrometheusRule, ServiceMonitor, PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";

const MODELS = {
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1alpha1/AlertmanagerConfig": AlertmanagerConfig,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
};

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const resources = JSON.parse(Buffer.concat(chunks).toString());
let failed = 0;
for (const resource of resources) {
  const key = `${resource.apiVersion}/${resource.kind}`;
  const name = `${key} ${resource.metadata?.name}`;
  const Model = MODELS[key];
  if (!Model) {
    console.log(`UNKNOWN ${name}: no CRD schema here for this kind`);
    failed++;
    continue;
  }
  try {
    new Model(resource).validate();
    console.log(`valid ${name}`);
  } catch (error) {
    console.log(`INVALID ${name}: ${error.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
