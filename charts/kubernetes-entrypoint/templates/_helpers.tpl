{{/* Chart name, cut to the 63 characters of a label value. */}}
{{- define "ke.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Base name of every object: the release name, prefixed with the chart name unless it
already contains it. 52 characters leave room for the "-webhook" and "-resolver"
suffixes within 63.
*/}}
{{- define "ke.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The webhook's Deployment, Service, PodDisruptionBudget and RBAC objects. */}}
{{- define "ke.webhookName" -}}
{{- printf "%s-webhook" (include "ke.fullname" .) -}}
{{- end -}}

{{/* The MutatingWebhookConfiguration (cluster-scoped). */}}
{{- define "ke.webhookConfigName" -}}
{{- include "ke.fullname" . -}}
{{- end -}}

{{/* The Secret holding the serving certificate (cert-manager's or the self-signed one). */}}
{{- define "ke.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "ke.fullname" .) -}}
{{- end -}}

{{/* The resolver's ClusterRole. */}}
{{- define "ke.resolverRoleName" -}}
{{- printf "%s-resolver" (include "ke.fullname" .) -}}
{{- end -}}

{{/* The controller's Deployment, ServiceAccount, roles and admission policy. */}}
{{- define "ke.controllerName" -}}
{{- printf "%s-controller" (include "ke.fullname" .) -}}
{{- end -}}

{{/* Whether the controller runs in a Deployment of its own. */}}
{{- define "ke.controllerSeparate" -}}
{{- if and .Values.controller.enabled .Values.controller.separate -}}true{{- end -}}
{{- end -}}

{{- define "ke.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ke.webhookName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount the dependency controller runs as: its own with
controller.separate, the webhook's otherwise (one process).
*/}}
{{- define "ke.controllerServiceAccountName" -}}
{{- if include "ke.controllerSeparate" . -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (include "ke.controllerName" .) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- else -}}
{{- include "ke.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{- define "ke.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "ke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubernetes-entrypoint
{{- end -}}

{{- define "ke.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "ke.webhookLabels" -}}
{{ include "ke.labels" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "ke.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "ke.controllerLabels" -}}
{{ include "ke.labels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{/*
--allowed-custom-resources from controller.customResourceRules, so that the
controller's allow-list and its RBAC come from one value: resource.group for each
pair, *.group where resources is ["*"]. Empty without rules.
*/}}
{{- define "ke.allowedCustomResources" -}}
{{- $items := list -}}
{{- range .Values.controller.customResourceRules -}}
{{- $resources := .resources -}}
{{- range .apiGroups -}}
{{- $group := . -}}
{{- range $resources -}}
{{- $items = append $items (printf "%s.%s" . $group) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $items | uniq | join "," -}}
{{- end -}}

{{/* The client-side rate limit of a process's calls to the API server. */}}
{{- define "ke.apiRateArgs" -}}
- --kube-api-qps={{ .Values.controller.kubeAPIQPS }}
- --kube-api-burst={{ int64 .Values.controller.kubeAPIBurst }}
{{- end -}}

{{/*
MEMORY_LIMIT: the container's memory limit in bytes, from the downward API;
entrypoint-webhook sets Go's soft memory limit (debug.SetMemoryLimit) to nine
tenths of it unless GOMEMLIMIT is set.
*/}}
{{- define "ke.memoryLimitEnv" -}}
- name: MEMORY_LIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end -}}

{{/* repository:tag, or repository@digest. */}}
{{- define "ke.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The resolver's image, which the webhook injects: repository:tag, or repository@digest. */}}
{{- define "ke.resolverImage" -}}
{{- $img := .Values.injection.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Service's in-cluster DNS names, most specific first. */}}
{{- define "ke.serviceHosts" -}}
{{- $svc := include "ke.webhookName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) (printf "%s.%s" $svc $ns) $svc | toJson -}}
{{- end -}}

{{/* The host of webhook.url, when set and valid. */}}
{{- define "ke.urlHost" -}}
{{- with .Values.webhook.url -}}
{{- $u := urlParse . -}}
{{- if or (ne $u.scheme "https") (not $u.hostname) -}}
{{- fail (printf "webhook.url %q: want https://host[:port]/path (the API server calls webhooks over HTTPS only)" .) -}}
{{- end -}}
{{- $u.hostname -}}
{{- end -}}
{{- end -}}

{{/* Names and IPs of the serving certificate: the Service's, plus webhook.url's host. */}}
{{- define "ke.certHosts" -}}
{{- $hosts := include "ke.serviceHosts" . | fromJsonArray -}}
{{- with include "ke.urlHost" . -}}
{{- $hosts = append $hosts . | uniq -}}
{{- end -}}
{{- toJson $hosts -}}
{{- end -}}

{{/* Whether a host is an IP address (IPv4 dotted quad, or IPv6 with a colon). */}}
{{- define "ke.isIP" -}}
{{- if or (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" .) (contains ":" .) -}}true{{- end -}}
{{- end -}}


{{/* Gate mode needs the controller: nothing else removes the scheduling gate. */}}
{{- define "ke.checkController" -}}
{{- if and .Values.controller.gateAllNamespaces (not .Values.controller.enabled) -}}
{{- fail "controller.gateAllNamespaces=true needs controller.enabled=true: gated pods would never be scheduled, since only the controller removes their scheduling gate" -}}
{{- end -}}
{{- if and .Values.webhook.adoptAllNamespaces (not .Values.controller.enabled) -}}
{{- fail "webhook.adoptAllNamespaces=true needs controller.enabled=true: adopted pods would never be scheduled, since only the controller removes their scheduling gate" -}}
{{- end -}}
{{- if and (include "ke.controllerSeparate" .) (not .Values.controller.leaderElect) (gt (int .Values.controller.replicaCount) 1) -}}
{{- fail "controller.replicaCount above 1 needs controller.leaderElect=true: each replica would run the controller" -}}
{{- end -}}
{{- end -}}

{{/* The Lease the controller's replicas elect a leader with (fixed in entrypoint-webhook). */}}
{{- define "ke.leaderElectionLease" -}}
kubernetes-entrypoint-controller
{{- end -}}
