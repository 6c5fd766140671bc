// Validates rendered Kubernetes manifests (multi-document YAML files given as
// arguments) against the Kubernetes OpenAPI schemas shipped in the npm package
// kubernetes-models (and prometheus-operator's CRDs for ServiceMonitor).
// Also enforces the project's own rules: every container non-root, read-only
// root filesystem, no privilege escalation, resources set.
import fs from "node:fs";
import * as yaml from "js-yaml";

function modulePath(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

function checkPodSpec(where, spec, errors) {
  const podSec = spec.securityContext || {};
  for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
    const sec = c.securityContext || {};
    const name = `${where} container ${c.name}`;
    if (!(sec.runAsNonRoot || podSec.runAsNonRoot)) errors.push(`${name}: runAsNonRoot not set`);
    if (sec.readOnlyRootFilesystem !== true) errors.push(`${name}: readOnlyRootFilesystem is not true`);
    if (sec.allowPrivilegeEscalation !== false) errors.push(`${name}: allowPrivilegeEscalation is not false`);
    if (!c.resources || !c.resources.requests || !c.resources.limits) errors.push(`${name}: resources requests/limits missing`);
  }
}

let errors = [];
let count = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter(Boolean);
  for (const doc of docs) {
    const where = `${file}: ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    let Model;
    try {
      const mod = await import(modulePath(doc.apiVersion, doc.kind));
      Model = mod[doc.kind];
    } catch (e) {
      errors.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (e) {
      errors.push(`${where}: ${e.message}`);
    }
    const podSpec = doc.spec && doc.spec.template && doc.spec.template.spec;
    if (podSpec) checkPodSpec(where, podSpec, errors);
    count++;
  }
}
if (errors.length) {
  for (const e of errors) console.error("INVALID " + e);
  process.exit(1);
}
console.log(`validate-manifests: ${count} objects valid`);
