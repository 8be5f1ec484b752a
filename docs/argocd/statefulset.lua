-- Argo CD health of apps/StatefulSet with kubernetes-entrypoint's owner summary
-- (resource.customizations.health.apps_StatefulSet). While the annotation
-- entrypoint.io/waiting is set: Progressing with the summary as message, or
-- Degraded for a reason that waiting never resolves (Cycle,
-- TooManyDependencies). Otherwise the checks of Argo CD's built-in
-- StatefulSet health, which this script replaces: generation observed, ready
-- replicas, a partitioned rollout, and the update revision reached.
local hs = {}
local annotations = obj.metadata.annotations
local waiting = annotations and annotations["entrypoint.io/waiting"]
if waiting ~= nil and waiting ~= "" then
  local reason = string.match(waiting, "^(%a+):")
  if reason == "Cycle" or reason == "TooManyDependencies" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = waiting
  return hs
end
local spec = obj.spec or {}
local status = obj.status or {}
local observed = status.observedGeneration or 0
if observed == 0 or (obj.metadata.generation or 0) > observed then
  hs.status = "Progressing"
  hs.message = "Waiting for statefulset spec update to be observed..."
  return hs
end
local replicas = spec.replicas or 1
local ready = status.readyReplicas or 0
if ready < replicas then
  hs.status = "Progressing"
  hs.message = "Waiting for " .. (replicas - ready) .. " pods to be ready..."
  return hs
end
local strategy = spec.updateStrategy or {}
if strategy.type == "OnDelete" then
  hs.status = "Healthy"
  hs.message = "statefulset has " .. ready .. " ready pods"
  return hs
end
local partition = strategy.rollingUpdate and strategy.rollingUpdate.partition
if partition ~= nil and partition > 0 then
  if (status.updatedReplicas or 0) < replicas - partition then
    hs.status = "Progressing"
    hs.message = "Waiting for partitioned roll out to finish: " .. (status.updatedReplicas or 0) .. " out of " .. (replicas - partition) .. " new pods have been updated..."
    return hs
  end
  hs.status = "Healthy"
  hs.message = "partitioned roll out complete"
  return hs
end
if status.updateRevision ~= status.currentRevision then
  hs.status = "Progressing"
  hs.message = "waiting for statefulset rolling update to complete"
  return hs
end
hs.status = "Healthy"
return hs
