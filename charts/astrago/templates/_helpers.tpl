{{- define "astrago.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "astrago.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "role" "core") */}}
{{- define "astrago.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* The image of one role: its own tag, else image.tag, else the chart's appVersion. */}}
{{- define "astrago.image" -}}
{{- $role := index .root.Values .role -}}
{{- $tag := $role.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" .root.Values.image.repository $tag -}}
{{- end -}}

{{- define "astrago.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-env" (include "astrago.fullname" .)) -}}
{{- end -}}

{{- define "astrago.workloadNamespace" -}}
{{- .Values.workloads.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "astrago.postgresHost" -}}
{{- printf "%s-postgresql" (include "astrago.fullname" .) -}}
{{- end -}}

{{- define "astrago.mariadbHost" -}}
{{- printf "%s-mariadb" (include "astrago.fullname" .) -}}
{{- end -}}

{{/* The bundled database runs when enabled and no external URL is given: "postgresql", "mariadb" or "". */}}
{{- define "astrago.bundledEngine" -}}
{{- if and .Values.database.bundled.enabled (not .Values.database.external.url) -}}
{{- .Values.database.bundled.engine | default "postgresql" -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by core and batch: settings as ASTRAGO_* variables, secrets from the Secret. */}}
{{- define "astrago.serverEnv" -}}
- name: ASTRAGO_BACKEND
  value: kubernetes
- name: ASTRAGO_NAMESPACE
  value: {{ include "astrago.workloadNamespace" . | quote }}
- name: ASTRAGO_STORAGE_CLASS
  value: {{ .Values.storageClass | quote }}
{{- with .Values.imagePullSecrets }}
- name: ASTRAGO_IMAGE_PULL_SECRETS
  value: {{ $names := list }}{{ range . }}{{ $names = append $names .name }}{{ end }}{{ toJson $names | quote }}
{{- end }}
{{- with .Values.workloadImageRegistry }}
- name: ASTRAGO_IMAGE_REGISTRY
  value: {{ . | quote }}
{{- end }}
- name: ASTRAGO_DATA_DIR
  value: /var/lib/astrago
- name: ASTRAGO_VOLUMES_CLAIM
  value: {{ .Values.volumes.claimName | quote }}
- name: ASTRAGO_VOLUMES_DIR
  value: /var/lib/astrago-volumes
- name: ASTRAGO_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- with .Values.metrics.prometheusUrl }}
- name: ASTRAGO_TELEMETRY_PROMETHEUS_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.metrics.healthPrometheusUrl | default .Values.metrics.prometheusUrl }}
- name: ASTRAGO_GPU_HEALTH_PROMETHEUS_URL
  value: {{ . | quote }}
{{- end }}
- name: ASTRAGO_INTERNAL_URL
  value: {{ .Values.workloads.code.internalUrl | default (printf "http://%s.%s.svc:%v" (include "astrago.fullname" .) .Release.Namespace .Values.core.service.port) | quote }}
{{- with .Values.workloads.code.fetchImage }}
- name: ASTRAGO_CODE_FETCH_IMAGE
  value: {{ . | quote }}
{{- end }}
- name: ASTRAGO_CODE_CREDENTIAL_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "astrago.secretName" . }}
      key: ASTRAGO_CODE_CREDENTIAL_KEY
- name: ASTRAGO_GATEWAY_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "astrago.secretName" . }}
      key: ASTRAGO_GATEWAY_KEY
- name: ASTRAGO_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- with .Values.publicUrl }}
- name: ASTRAGO_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.oidc.issuer }}
- name: ASTRAGO_OIDC_ISSUER
  value: {{ . | quote }}
- name: ASTRAGO_OIDC_CLIENT_ID
  value: {{ $.Values.oidc.clientId | quote }}
- name: ASTRAGO_OIDC_CLI_CLIENT_ID
  value: {{ $.Values.oidc.cliClientId | quote }}
- name: ASTRAGO_OIDC_ADMIN_ROLES
  value: {{ $.Values.oidc.adminRoles | toJson | quote }}
- name: ASTRAGO_OIDC_GROUP_PREFIX
  value: {{ $.Values.oidc.groupPrefix | quote }}
- name: ASTRAGO_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "astrago.secretName" $ }}
      key: ASTRAGO_OIDC_CLIENT_SECRET
{{- end }}
- name: ASTRAGO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "astrago.secretName" . }}
      key: ASTRAGO_DATABASE_URL
{{- with .Values.database.external.passwordSecret }}
{{- if and .name $.Values.database.external.url }}
- name: ASTRAGO_DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .name | quote }}
      key: {{ .key | default "mariadb-password" | quote }}
{{- end }}
{{- end }}
- name: ASTRAGO_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "astrago.secretName" . }}
      key: ASTRAGO_ADMIN_PASSWORD
{{- end -}}

{{- define "astrago.checkValues" -}}
{{- if and (not .Values.existingSecret) (not .Values.database.external.url) (not .Values.database.bundled.enabled) -}}
{{- fail "database: set database.external.url or database.bundled.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* A secret value: the one given in values, else the one already stored in the release's Secret (so an
     upgrade keeps it), else a new random one. (dict "root" $ "key" "ASTRAGO_ADMIN_PASSWORD" "given" "...") */}}
{{- define "astrago.secretValue" -}}
{{- if .given -}}
{{- .given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "astrago.secretName" .root) -}}
{{- if and $existing (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}
