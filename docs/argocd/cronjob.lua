-- Argo CD health of batch/CronJob with kubernetes-entrypoint's owner summary
-- (resource.customizations.health.batch_CronJob). While the annotation
-- entrypoint.io/waiting is set (the pods of one of its Jobs wait):
-- Progressing with the summary as message, or Degraded for a reason that
-- waiting never resolves (Cycle, TooManyDependencies). Otherwise Suspended
-- when spec.suspend is set, else Healthy: a CronJob's runs are its Jobs'
-- health, not its own.
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
if obj.spec ~= nil and obj.spec.suspend then
  hs.status = "Suspended"
  hs.message = "CronJob is suspended"
  return hs
end
hs.status = "Healthy"
return hs
