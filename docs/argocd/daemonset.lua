-- Argo CD health of apps/DaemonSet with kubernetes-entrypoint's owner summary
-- (resource.customizations.health.apps_DaemonSet). While the annotation
-- entrypoint.io/waiting is set: Progressing with the summary as message, or
-- Degraded for a reason that waiting never resolves (Cycle,
-- TooManyDependencies). Otherwise the checks of Argo CD's built-in DaemonSet
-- health, which this script replaces: generation observed, then (unless
-- OnDelete) updated and available pods on every node that should run one.
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
if (obj.metadata.generation or 0) > (status.observedGeneration or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: observed daemon set generation less than desired generation"
  return hs
end
if spec.updateStrategy ~= nil and spec.updateStrategy.type == "OnDelete" then
  hs.status = "Healthy"
  hs.message = "daemon set " .. obj.metadata.name .. " has no rolling update"
  return hs
end
local desired = status.desiredNumberScheduled or 0
local updated = status.updatedNumberScheduled or 0
if updated < desired then
  hs.status = "Progressing"
  hs.message = "Waiting for daemon set " .. obj.metadata.name .. " rollout to finish: " .. updated .. " out of " .. desired .. " new pods have been updated..."
  return hs
end
if (status.numberAvailable or 0) < desired then
  hs.status = "Progressing"
  hs.message = "Waiting for daemon set " .. obj.metadata.name .. " rollout to finish: " .. (status.numberAvailable or 0) .. " of " .. desired .. " updated pods are available..."
  return hs
end
hs.status = "Healthy"
return hs
