{{- define "stretto.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "stretto.labels" -}}
app.kubernetes.io/name: stretto
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The namespace of the node daemon: its own (values nodeDaemon.namespace) or the release's. */}}
{{- define "stretto.nodeDaemonNamespace" -}}
{{ .Values.nodeDaemon.namespace | default .Release.Namespace }}
{{- end -}}

{{/* PodSecurity `restricted`: what every container of the operator and the scheduler runs with. */}}
{{- define "stretto.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- define "stretto.restrictedPod" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}
