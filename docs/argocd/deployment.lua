-- Argo CD health of apps/Deployment with kubernetes-entrypoint's owner summary
-- (resource.customizations.health.apps_Deployment). While the annotation
-- entrypoint.io/waiting is set, some of the Deployment's pods wait for their
-- dependencies: Progressing with the summary as message, or Degraded when the
-- reason can never resolve by waiting (Cycle, TooManyDependencies). Otherwise
-- the checks of Argo CD's built-in Deployment health, which this script
-- replaces: paused, generation observed, progress deadline, updated and
-- available replicas.
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
if spec.paused then
  hs.status = "Suspended"
  hs.message = "Deployment is paused"
  return hs
end
if (obj.metadata.generation or 0) > (status.observedGeneration or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: observed deployment generation less than desired generation"
  return hs
end
for _, c in ipairs(status.conditions or {}) do
  if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded" then
    hs.status = "Degraded"
    hs.message = "Deployment " .. obj.metadata.name .. " exceeded its progress deadline"
    return hs
  end
end
local replicas = spec.replicas or 1
local updated = status.updatedReplicas or 0
if updated < replicas then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. updated .. " out of " .. replicas .. " new replicas have been updated..."
  return hs
end
if (status.replicas or 0) > updated then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. (status.replicas - updated) .. " old replicas are pending termination..."
  return hs
end
if (status.availableReplicas or 0) < updated then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: " .. (status.availableReplicas or 0) .. " of " .. updated .. " updated replicas are available..."
  return hs
end
hs.status = "Healthy"
return hs
