// config/developer-namespace/ as TAP's Namespace Provisioner expands it (an additional_sources folder), rendered
// by the real ytt v0.45.0 and judged by the real CRD schemas and Tekton v0.50.1's Pod builder (../shared/tools/
// k8s-check). The provisioner's own expansion template is not public; EXPANSION below is written from TAP's docs
// (pivotal/docs-tap namespace-provisioner/customize-installation, parameters, use-case3/4, default-resources):
// each additional source is mounted as a ytt library, and for every desired namespace its templates get that
// namespace's parameters (labels and annotations param.nsp.tap/KEY, or a GitOps file's entries) at the top of
// data.values, with tap_values, default_parameters and imported beside them; namespaced objects without a
// namespace land in each namespace. That is all these templates assume.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { checkerTool, validateSchemas, ytt } from '../support/checker.ts'
import { runGate } from '../support/gate.ts'

const SOURCE = new URL('../../config/developer-namespace/', import.meta.url).pathname
const IMAGE =
  'registry.example.com/tools/amr-policy-gate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
const EXPANSION = `#@ load("@ytt:data", "data")
#@ load("@ytt:library", "library")
#@ load("@ytt:overlay", "overlay")
#@ load("@ytt:struct", "struct")
#@ load("@ytt:template", "template")
#@ def in_namespace(name):
#@overlay/match by=overlay.all, expects="1+"
---
metadata:
  #@overlay/match missing_ok=True
  namespace: #@ name
#@ end
#@ def values_for(namespace):
#@   values = {"tap_values": struct.decode(data.values.tap_values), "default_parameters": struct.decode(data.values.default_parameters), "imported": {}}
#@   values.update(struct.decode(namespace))
#@   return values
#@ end
#@ for namespace in data.values.namespaces:
--- #@ template.replace(overlay.apply(library.get("amr-policy-gate").with_data_values(values_for(namespace)).eval(), in_namespace(namespace.name)))
#@ end
`
const TAP_VALUES = {
  profile: 'full',
  supply_chain: 'testing_scanning',
  ootb_supply_chain_testing_scanning: { service_account: 'builder' },
}

interface Manifest {
  kind: string
  metadata: { name: string; namespace?: string }
  spec?: any
  subjects?: unknown[]
  [field: string]: unknown
}

let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nsp-test-'))
  cpSync(SOURCE, join(work, '_ytt_lib', 'amr-policy-gate'), { recursive: true, dereference: true })
  writeFileSync(join(work, 'expansion.yaml'), EXPANSION)
})

/** What the provisioner would create for these namespaces, by kind/namespace/name. */
function provision(values: {
  namespaces: Array<Record<string, unknown>>
  default_parameters?: Record<string, unknown>
  tap_values?: Record<string, unknown>
}): Map<string, Manifest> {
  const valuesFile = { tap_values: TAP_VALUES, default_parameters: {}, ...values }
  writeFileSync(join(work, 'values.yaml'), `#@data/values\n---\n${stringify(valuesFile)}`)
  const documents = parseAllDocuments(ytt(['-f', work])).map((document) => document.toJS() as Manifest)
  return new Map(
    documents.map((manifest) => [
      `${manifest.kind}/${manifest.metadata.namespace}/${manifest.metadata.name}`,
      manifest,
    ]),
  )
}

/** The Runnable Cartographer stamps from the ClusterImageTemplate (its ytt, with the template's param defaults). */
function stampRunnable(workloadParams: Record<string, string> = {}) {
  const [imageTemplate, runTemplate] = parseAllDocuments(
    readFileSync(new URL('../../config/cartographer.yaml', import.meta.url), 'utf8'),
  ).map((document) => document.toJS())
  const params = {
    ...Object.fromEntries(
      imageTemplate.spec.params.map((param: { name: string; default: string }) => [param.name, param.default]),
    ),
    ...workloadParams,
  }
  const stamping = mkdtempSync(join(tmpdir(), 'nsp-stamp-'))
  writeFileSync(join(stamping, 'template.yaml'), imageTemplate.spec.ytt)
  writeFileSync(
    join(stamping, 'workload-values.yaml'),
    `#@data/values\n---\n${stringify({ workload: { metadata: { name: 'app', namespace: 'dev' }, spec: {} }, params, image: 'registry.example.com/apps/app@sha256:' + 'ab'.repeat(32) })}`,
  )
  return Object.assign(parse(ytt(['-f', stamping])), { runTemplate })
}

/** The step container Tekton v0.50's Pod builder makes of the Task, for a TaskRun of the stamped Runnable's params. */
function tektonPod(task: unknown, runnable: ReturnType<typeof stampRunnable>) {
  const [taskFile, taskRunFile, podFile] = ['task.yaml', 'taskrun.yaml', 'pod.yaml'].map((name) =>
    join(mkdtempSync(join(tmpdir(), 'nsp-pod-')), name),
  ) as [string, string, string]
  writeFileSync(taskFile, stringify(task))
  writeFileSync(
    taskRunFile,
    stringify({
      apiVersion: 'tekton.dev/v1',
      kind: 'TaskRun',
      metadata: { name: 'app-policy-x', namespace: 'dev' },
      spec: {
        params: runnable.spec.inputs['tekton-params'],
        serviceAccountName: runnable.spec.serviceAccountName,
        taskRef: { name: 'tekton-policy-enforcement' },
      },
    }),
  )
  execFileSync(checkerTool('tekton-check-v0.50'), [taskFile, taskRunFile, podFile], { stdio: 'pipe' })
  return parse(readFileSync(podFile, 'utf8')).spec.containers[0] as {
    args: string[]
    env: Array<{ name: string; value?: string; valueFrom?: unknown }>
    volumeMounts: Array<{ name: string; mountPath: string }>
  }
}

const ytterror = (run: () => unknown) => {
  try {
    run()
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error)
  }
  return 'no error'
}

describe('config/developer-namespace/ through the Namespace Provisioner', () => {
  it("gives every namespace the Task, the scan reader bound to its service accounts, and the store secrets' imports", () => {
    const objects = provision({
      default_parameters: { policy_gate_image: IMAGE },
      namespaces: [
        { name: 'dev' },
        { name: 'team-a', policy_service_accounts: ['ci', 'builder'], policy_secrets_namespace: 'platform-secrets' },
      ],
    })
    expect([...objects.keys()].sort()).toEqual(
      ['dev', 'team-a']
        .flatMap((namespace) => [
          `RoleBinding/${namespace}/amr-policy-gate-scan-reader`,
          `Role/${namespace}/amr-policy-gate-scan-reader`,
          `SecretImport/${namespace}/metadata-store-access-token`,
          `SecretImport/${namespace}/metadata-store-cert`,
          `Task/${namespace}/tekton-policy-enforcement`,
        ])
        .sort(),
    )
    // The supply chain's service account the provisioner manages (tap-values), and those a namespace lists, once each.
    expect(objects.get('RoleBinding/dev/amr-policy-gate-scan-reader')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'builder' },
    ])
    expect(objects.get('RoleBinding/team-a/amr-policy-gate-scan-reader')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'builder' },
      { kind: 'ServiceAccount', name: 'ci' },
    ])
    expect(objects.get('Role/dev/amr-policy-gate-scan-reader')!.rules).toEqual([
      {
        apiGroups: ['app-scanning.apps.tanzu.vmware.com'],
        resources: ['imagevulnerabilityscans'],
        verbs: ['get', 'list', 'watch'],
      },
    ])
    expect(objects.get('SecretImport/dev/metadata-store-cert')!.spec).toEqual({ fromNamespace: 'amr-policy-gate' })
    expect(objects.get('SecretImport/team-a/metadata-store-access-token')!.spec).toEqual({
      fromNamespace: 'platform-secrets',
    })
    const task = objects.get('Task/dev/tekton-policy-enforcement')!
    expect(task.spec.steps[0].image).toBe(IMAGE)
    // The provisioner fills registries-credentials with the cluster's exported registry secrets.
    expect(
      task.spec.volumes.find((volume: { name: string }) => volume.name === 'registry-credentials').secret.secretName,
    ).toBe('registries-credentials')
  })

  it('binds "default" when tap-values name no service account for the chain', () => {
    const objects = provision({
      tap_values: { supply_chain: 'testing_scanning' },
      default_parameters: { policy_gate_image: IMAGE },
      namespaces: [{ name: 'dev' }],
    })
    expect(objects.get('RoleBinding/dev/amr-policy-gate-scan-reader')!.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'default' },
    ])
  })

  it("rolls out in audit cluster-wide from default_parameters, a namespace's own policy_mode winning", () => {
    const objects = provision({
      default_parameters: { policy_gate_image: IMAGE, policy_mode: 'audit' },
      namespaces: [{ name: 'dev' }, { name: 'payments', policy_mode: 'enforce' }],
    })
    const modeOf = (namespace: string) =>
      objects
        .get(`Task/${namespace}/tekton-policy-enforcement`)!
        .spec.params.find((param: { name: string }) => param.name === 'mode').default
    expect([modeOf('dev'), modeOf('payments')]).toEqual(['audit', 'enforce'])
  })

  it.each([
    [
      'no image: task.yaml still holds the placeholder',
      { namespaces: [{ name: 'dev' }] },
      /amr-policy-gate: the Task's image is 'POLICY-GATE-IMAGE': set the parameter policy_gate_image/,
    ],
    [
      'an image by tag, not digest',
      {
        default_parameters: { policy_gate_image: 'registry.example.com/tools/amr-policy-gate:1.0' },
        namespaces: [{ name: 'dev' }],
      },
      /the Task's image is 'registry.example.com\/tools\/amr-policy-gate:1.0'/,
    ],
    [
      'a mode the gate does not know',
      { default_parameters: { policy_gate_image: IMAGE }, namespaces: [{ name: 'dev', policy_mode: 'warn' }] },
      /amr-policy-gate: parameter policy_mode is 'warn': use enforce or audit/,
    ],
  ])(
    'stops the provisioner with an error naming the parameter on %s, rather than provisioning a broken Task',
    (_name, values, message) => {
      expect(ytterror(() => provision(values))).toMatch(message)
    },
  )

  it('provisions only objects the real CRD schemas accept (Tekton Task, secretgen SecretImport, RBAC)', () => {
    provision({
      default_parameters: { policy_gate_image: IMAGE, policy_mode: 'audit' },
      namespaces: [{ name: 'dev', policy_service_accounts: ['ci'] }],
    })
    const rendered = mkdtempSync(join(tmpdir(), 'nsp-rendered-'))
    writeFileSync(join(rendered, 'provisioned.yaml'), ytt(['-f', work]))
    const { ok, log } = validateSchemas([rendered])
    expect(log).toMatch(/Task.*OK/)
    expect(log).toMatch(/SecretImport.*OK/)
    expect(ok, log).toBe(true)
  })

  it(
    "a new policy_inputs_revision changes what the Runnable stamps (the TaskRun's annotation), so Cartographer " +
      'starts a new run',
    () => {
      const [first, second] = [
        stampRunnable({ policy_inputs_revision: 'r1' }),
        stampRunnable({ policy_inputs_revision: 'r2' }),
      ]
      expect([first.spec.inputs['inputs-revision'], second.spec.inputs['inputs-revision']]).toEqual(['r1', 'r2'])
      expect(first.runTemplate.spec.template.metadata.annotations).toEqual({
        'amr-policy-gate/inputs-revision': '$(runnable.spec.inputs.inputs-revision)$',
      })
      expect(stampRunnable().spec.inputs['inputs-revision']).toBe('')
    },
  )

  it("a workload's policy_vex and policy_vex_accepts_kev reach the gate's environment through Tekton's Pod", () => {
    const objects = provision({ default_parameters: { policy_gate_image: IMAGE }, namespaces: [{ name: 'dev' }] })
    const task = objects.get('Task/dev/tekton-policy-enforcement')
    const envOf = (workloadParams: Record<string, string>) => {
      const container = tektonPod(task, stampRunnable(workloadParams))
      return {
        env: Object.fromEntries(container.env.map((v) => [v.name, v.value ?? ''])),
        mounts: container.volumeMounts,
      }
    }
    const given = envOf({ policy_vex: '/etc/amr-policy-gate-vex', policy_vex_accepts_kev: 'true' })
    expect(given.env).toMatchObject({ POLICY_VEX: '/etc/amr-policy-gate-vex', POLICY_VEX_ACCEPTS_KEV: 'true' })
    expect(given.mounts).toContainEqual(expect.objectContaining({ name: 'vex', mountPath: '/etc/amr-policy-gate-vex' }))
    expect(envOf({}).env).toMatchObject({ POLICY_VEX: '', POLICY_VEX_ACCEPTS_KEV: 'false' })
  })

  it(
    "in an audit namespace without the store's token, the Pod Tekton builds runs the gate to exit 0 with verdict " +
      'error and the reason',
    async () => {
      const objects = provision({
        default_parameters: { policy_gate_image: IMAGE, policy_mode: 'audit' },
        namespaces: [{ name: 'dev' }],
      })
      const runnable = stampRunnable()
      const tektonParams = runnable.spec.inputs['tekton-params'] as Array<{ name: string }>
      expect(tektonParams.map((param) => param.name)).not.toContain('mode')
      const container = tektonPod(objects.get('Task/dev/tekton-policy-enforcement'), runnable)
      const env = Object.fromEntries(
        container.env
          .filter((variable) => !variable.valueFrom)
          .map((variable) => [variable.name, variable.value ?? '']),
      )
      expect(env.POLICY_MODE).toBe('audit')
      // The step's own arguments, after the entrypoint's "--": the bundle's path and the results folder made local.
      const results = mkdtempSync(join(tmpdir(), 'nsp-results-'))
      const args = container.args
        .slice(container.args.indexOf('--') + 2)
        .map((arg) => (arg === '/tekton/results' ? results : arg))
      const run = await runGate(args, { env })
      expect(run.code).toBe(0)
      expect(run.stderr).toMatch(/AUDIT/)
      const result = (name: string) => readFileSync(join(results, name), 'utf8')
      expect(result('verdict')).toBe('error')
      expect(result('reason')).toBe('TOKEN')
      expect(result('message')).toMatch(/^AUDIT, not enforced: .*token/)
    },
  )
})
