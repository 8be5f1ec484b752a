-- Argo CD health of batch/Job with kubernetes-entrypoint's owner summary
-- (resource.customizations.health.batch_Job). While the annotation
-- entrypoint.io/waiting is set: Progressing with the summary as message, or
-- Degraded for a reason that waiting never resolves (Cycle,
-- TooManyDependencies). Otherwise the checks of Argo CD's built-in Job
-- health, which this script replaces: Failed is Degraded, Complete is
-- Healthy, Suspended is Suspended, anything else Progressing.
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
local status = obj.status or {}
for _, c in ipairs(status.conditions or {}) do
  if c.status == "True" and c.type == "Failed" then
    hs.status = "Degraded"
    hs.message = c.message
    return hs
  end
  if c.status == "True" and c.type == "Complete" then
    hs.status = "Healthy"
    hs.message = c.message
    return hs
  end
  if c.status == "True" and c.type == "Suspended" then
    hs.status = "Suspended"
    hs.message = c.message
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Job has " .. (status.active or 0) .. " active pods"
return hs
