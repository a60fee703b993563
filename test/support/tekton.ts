// Reads the manifests in config/ and turns the Task's step into the container Tekton would run:
// params and result paths substituted, env from secrets, secret and ConfigMap volumes mounted read-only as
// folders of files (an optional ConfigMap that does not exist as an empty folder), /tekton/results
// writable, the securityContext's user and read-only root filesystem.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { ContainerRun } from './container.ts'

const CONFIG = new URL('../../config/', import.meta.url)

// The parts of the Tekton v1 and Cartographer schemas the tests read.
export interface Param {
  name: string
  type?: string
  default?: string
  description?: string
}
export interface EnvVar {
  name: string
  value?: string
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } }
}
export interface Step {
  name: string
  image: string
  command?: string[]
  args?: string[]
  script?: string
  env?: EnvVar[]
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>
  timeout?: string
  computeResources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: {
    runAsNonRoot?: boolean
    runAsUser?: number
    runAsGroup?: number
    readOnlyRootFilesystem?: boolean
    allowPrivilegeEscalation?: boolean
  }
}
export interface Task {
  apiVersion: string
  kind: string
  metadata: { name: string }
  spec: {
    params: Param[]
    results: Array<{ name: string; description?: string }>
    volumes: Array<{
      name: string
      secret?: { secretName: string; optional?: boolean; items?: Array<{ key: string; path: string }> }
      configMap?: { name: string; optional?: boolean }
    }>
    steps: Step[]
  }
}
export interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string }
  spec: Record<string, any>
  [field: string]: unknown
}

export function configText(file: string): string {
  return readFileSync(new URL(file, CONFIG), 'utf8')
}

/** Every document of a config/ file; a YAML error fails the caller. */
export function loadManifests(file: string): Manifest[] {
  return parseAllDocuments(configText(file)).map((document) => {
    if (document.errors.length) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`)
    return document.toJS() as Manifest
  })
}

export function loadTask(): Task {
  const [task] = loadManifests('task.yaml')
  return task as unknown as Task
}

/** Tekton's substitution of $(params.NAME) and $(results.NAME.path); an unknown reference throws. */
export function substitute(text: string, task: Task, params: Record<string, string>): string {
  return text.replace(/\$\((params|results)\.([\w-]+)(\.path)?\)/g, (reference, kind: string, name: string) => {
    if (kind === 'results') {
      if (!task.spec.results.some((result) => result.name === name)) throw new Error(`unknown result in ${reference}`)
      return `/tekton/results/${name}`
    }
    const value = params[name] ?? task.spec.params.find((param) => param.name === name)?.default
    if (value === undefined) throw new Error(`no value for ${reference}`)
    return value
  })
}

/** The container Tekton would run for the Task's step, with `image` instead of the placeholder. */
export function taskStepAsContainer(
  task: Task,
  run: {
    image: string
    params: Record<string, string>
    secrets: Record<string, Record<string, string>>
    configMaps?: Record<string, Record<string, string>>
    resultsDir: string
    /** What the kubelet gives every pod: the API's address and the service account's token, ca.crt and namespace. */
    pod?: { env: Record<string, string>; serviceAccountDir: string }
  },
): ContainerRun {
  const [step] = task.spec.steps
  if (!step) throw new Error('the Task has no step')
  const env: Record<string, string> = { ...run.pod?.env }
  for (const variable of step.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef
    const value = ref ? run.secrets[ref.name]?.[ref.key] : substitute(variable.value ?? '', task, run.params)
    if (value === undefined && !ref?.optional) throw new Error(`secret ${ref?.name} has no key ${ref?.key}`)
    if (value !== undefined) env[variable.name] = value
  }
  const files: Record<string, string> = {}
  for (const mount of step.volumeMounts ?? []) {
    const volume = task.spec.volumes.find((candidate) => candidate.name === mount.name)
    const data = volume?.secret
      ? run.secrets[volume.secret.secretName]
      : volume?.configMap
        ? run.configMaps?.[volume.configMap.name]
        : undefined
    if (!data && !(volume?.configMap?.optional || volume?.secret?.optional))
      throw new Error(`volume ${mount.name} has no secret or ConfigMap in this run`)
    const folder = mkdtempSync(join(tmpdir(), 'policy-gate-volume-'))
    // A volume's items choose keys and name their files; without items every key is a file of its name.
    const items = volume?.secret?.items ?? Object.keys(data ?? {}).map((key) => ({ key, path: key }))
    for (const { key, path } of items) if (data?.[key] !== undefined) writeFileSync(join(folder, path), data[key])
    files[folder] = mount.mountPath
  }
  // Kubernetes mounts the service account's folder into every container (automountServiceAccountToken).
  if (run.pod) files[run.pod.serviceAccountDir] = '/var/run/secrets/kubernetes.io/serviceaccount'
  const security = step.securityContext ?? {}
  return {
    entrypoint: step.command ?? [],
    args: (step.args ?? []).map((arg) => substitute(arg, task, run.params)),
    env,
    files,
    writable: { [run.resultsDir]: '/tekton/results' },
    readOnly: security.readOnlyRootFilesystem === true,
    ...(security.runAsUser === undefined
      ? {}
      : { user: `${security.runAsUser}:${security.runAsGroup ?? security.runAsUser}` }),
  }
}
