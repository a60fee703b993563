// The Tekton and Cartographer manifests in config/: they parse, they name only what the gate reads, they
// reference each other by the right names, and the Task's step, run exactly as Tekton would run it in the
// built image, produces the exit code and the result files its description promises.
import { lstatSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { parseDuration } from '../../gate/input.ts'
import { buildJsonReport, tektonResults } from '../../gate/render.ts'
import { DEFAULT_CA_PATH, ENVIRONMENT, EXIT, OPTIONS } from '../../gate/vocabulary.ts'
import { buildGateImage, dockerForTests, runContainer } from '../support/container.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { cleanImageBody, cycloneDxOf, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from '../support/documents.ts'
import { startKubernetes, type KubernetesApi } from '../support/kubernetes.ts'
import {
  missingRegistryTools,
  REGISTRY_PASSWORD,
  REGISTRY_USER,
  startRegistry,
  type Registry,
} from '../support/registry.ts'
import { answer, repeat, TEST_TOKEN, type Answer } from '../support/simulator.ts'
import { configText, loadManifests, loadTask, substitute, taskStepAsContainer } from '../support/tekton.ts'

const task = loadTask()
const step = task.spec.steps[0]!
const PLACEHOLDER = 'POLICY-GATE-IMAGE'

describe('config/task.yaml', () => {
  it('is a Tekton v1 Task named as the seed names it, with one step in exec form', () => {
    expect(task).toMatchObject({
      apiVersion: 'tekton.dev/v1',
      kind: 'Task',
      metadata: { name: 'tekton-policy-enforcement' },
    })
    expect(task.spec.steps).toHaveLength(1)
    expect(step.script).toBeUndefined()
    expect(step.command).toEqual(['/nodejs/bin/node'])
    expect(step.args?.[0]).toBe('/app/policy.mjs')
  })

  it('takes the image to check and the gate as described params, and uses every param it declares', () => {
    const params = Object.fromEntries(task.spec.params.map((param) => [param.name, param]))
    expect(params.image).toMatchObject({ type: 'string' })
    expect(params.image?.default).toBeUndefined()
    expect(params.gate).toMatchObject({ type: 'string', default: 'high' })
    const text = JSON.stringify(step)
    for (const param of task.spec.params) {
      expect(param.description, param.name).toBeTruthy()
      expect(text, `param ${param.name} is never used`).toContain(`$(params.${param.name})`)
    }
  })

  it('passes only flags the gate reads, each with its value', () => {
    const flags = new Map<string, (typeof OPTIONS)[number]>(OPTIONS.map((option) => [option.flag, option]))
    const args = step.args!.slice(1)
    for (let i = 0; i < args.length; i++) {
      if (!args[i]!.startsWith('--')) continue
      const option = flags.get(args[i]!)
      expect(option, `the gate has no option ${args[i]}`).toBeDefined()
      if (option?.value) expect(args[++i], `${args[i - 1]} needs a value`).toBeDefined()
    }
    expect(args.at(-1)).toBe('$(params.image)')
  })

  it('sets only environment variables the gate reads, the token from the seed secret', () => {
    const known = new Set([
      ...OPTIONS.flatMap((option) => option.env ?? []),
      ...ENVIRONMENT.map((variable) => variable.name),
    ])
    for (const variable of step.env ?? [])
      expect(known, `the gate does not read ${variable.name}`).toContain(variable.name)
    expect(step.env?.find((variable) => variable.name === 'ACCESS_TOKEN')).toEqual({
      name: 'ACCESS_TOKEN',
      valueFrom: { secretKeyRef: { name: 'metadata-store-access-token', key: 'accessToken', optional: true } },
    })
  })

  it('mounts the CA secret where the gate looks for it by default, and the optional exemptions ConfigMap beside it', () => {
    const [mount, exemptions] = step.volumeMounts ?? []
    expect(task.spec.volumes.find((volume) => volume.name === exemptions?.name)?.configMap).toEqual({
      name: 'amr-policy-gate-exemptions',
      optional: true,
    })
    expect(task.spec.params.find((param) => param.name === 'exemptions-file')?.description).toContain(
      `${exemptions?.mountPath}/exemptions.yaml`,
    )
    const volume = task.spec.volumes.find((candidate) => candidate.name === mount?.name)
    expect(volume?.secret?.secretName).toBe('metadata-store-cert')
    expect(`${mount?.mountPath}/caCrt`).toBe(DEFAULT_CA_PATH)
    expect(mount?.readOnly).toBe(true)
  })

  it('declares exactly the results the gate writes', () => {
    const written = Object.keys(tektonResults(buildJsonReport({ image: null, gate: 'none' }, { skipped: true })))
    expect(task.spec.results.map((result) => result.name).sort()).toEqual(written.sort())
    for (const result of task.spec.results) expect(result.description, result.name).toBeTruthy()
  })

  it('runs non-root on a read-only root filesystem, with a timeout above the wait and sized resources', () => {
    expect(step.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    })
    const waitDefault = task.spec.params.find((param) => param.name === 'wait-timeout')!.default!
    expect(parseDuration(step.timeout!, 'timeout')).toBeGreaterThan(parseDuration(waitDefault, 'wait-timeout'))
    expect(step.computeResources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) })
    expect(step.computeResources?.limits?.memory).toBeTruthy()
  })

  it('keeps the image reference in one place to edit', () => {
    // config/task.yaml is a link to the Namespace Provisioner's copy, the one file: count each file once.
    const files = readdirSync(new URL('../../config/', import.meta.url), { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.yaml') && !lstatSync(new URL(`../../config/${file}`, import.meta.url)).isSymbolicLink(),
    )
    const mentions = files.map((file) => configText(file).split(PLACEHOLDER).length - 1)
    expect(mentions.reduce((sum, count) => sum + count, 0)).toBe(2) // the step's image, and the comment saying to edit it
    expect(step.image).toBe(PLACEHOLDER)
  })
})

describe('config/cartographer.yaml and config/supply-chain-example.yaml', () => {
  const [imageTemplate, runTemplate] = loadManifests('cartographer.yaml')
  const [supplyChain] = loadManifests('supply-chain-example.yaml')
  // ytt annotations are YAML comments, so the template body parses as the Runnable it stamps out.
  const runnable = parse(imageTemplate!.spec.ytt.split('---\n')[1])

  it('stamps a Runnable that uses the ClusterRunTemplate, which runs the Task', () => {
    expect(imageTemplate).toMatchObject({
      apiVersion: 'carto.run/v1alpha1',
      kind: 'ClusterImageTemplate',
      spec: { imagePath: '.status.outputs.imagePath' },
    })
    expect(runnable).toMatchObject({
      kind: 'Runnable',
      spec: { runTemplateRef: { name: runTemplate!.metadata.name, kind: 'ClusterRunTemplate' } },
    })
    expect(runTemplate).toMatchObject({
      kind: 'ClusterRunTemplate',
      spec: {
        template: { apiVersion: 'tekton.dev/v1', kind: 'TaskRun', spec: { taskRef: { name: task.metadata.name } } },
      },
    })
  })

  it('passes the Task the params it declares, and hands the checked image on', () => {
    const passed = [...imageTemplate!.spec.ytt.matchAll(/"name": "([\w-]+)"/g)].map(
      (match: RegExpMatchArray) => match[1],
    )
    const declared = task.spec.params.map((param) => param.name)
    // Every param of the Task reaches it, each from a workload param policy_<name> with the Task's own default.
    expect([...passed].sort()).toEqual([...declared].sort())
    expect(task.spec.params.filter((param) => param.default === undefined).map((param) => param.name)).toEqual([
      'image',
    ])
    expect(runTemplate!.spec.outputs.imagePath).toBe('spec.params[?(@.name=="image")].value')
    // Two differ on purpose: policy_mode is empty, so the namespace's Task default (enforce, or the Namespace
    // Provisioner's policy_mode) applies; policy_inputs_revision is no Task param, it only makes a new run.
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name)
    expect([...imageTemplate!.spec.params].sort(byName)).toEqual(
      [
        ...task.spec.params
          .filter((param) => param.name !== 'image')
          .map((param) => ({
            name: `policy_${param.name.replace(/-/g, '_')}`,
            default: param.name === 'mode' ? '' : param.default,
          })),
        { name: 'policy_inputs_revision', default: '' },
      ].sort(byName),
    )
  })

  it('puts the policy step after the scan step and feeds its image to what follows', () => {
    const resources = supplyChain!.spec.resources as Array<{
      name: string
      templateRef: { name: string }
      images?: Array<{ resource: string }>
    }>
    const names = resources.map((resource) => resource.name)
    const policy = resources.find((resource) => resource.templateRef.name === imageTemplate!.metadata.name)!
    expect(policy.images).toEqual([{ name: 'image', resource: 'image-scanner' }])
    expect(names.indexOf(policy.name)).toBeGreaterThan(names.indexOf('image-scanner'))
    expect(
      resources
        .slice(names.indexOf(policy.name) + 1)
        .flatMap((resource) => resource.images ?? [])
        .map((image) => image.resource),
    ).toEqual([policy.name])
  })
})

describe('Tekton substitution (test support)', () => {
  it('fills params from the run, then from defaults, and refuses unknown ones', () => {
    expect(substitute('$(params.gate) $(params.image)', task, { image: 'x' })).toBe('high x')
    expect(substitute('$(results.verdict.path)', task, {})).toBe('/tekton/results/verdict')
    expect(() => substitute('$(params.nope)', task, {})).toThrow(/no value/)
  })
})

const hasDocker = await dockerForTests()
const missingTools = await missingRegistryTools()

describe.skipIf(!hasDocker)('the Task step run as Tekton runs it', () => {
  const fixture = useStoreFixture()
  let image: string

  beforeAll(async () => {
    image = (await buildGateImage()).tag
  }, 300_000)

  async function runStep(
    answers: Answer[],
    params: Record<string, string> = {},
    configMaps: Record<string, Record<string, string>> = {},
    otherImages: Record<string, Answer[]> = {},
  ) {
    const store = await fixture.serve(answers, { images: otherImages })
    const resultsDir = mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
    const container = taskStepAsContainer(task, {
      image,
      params: { image: SAMPLE_IMAGE, 'metadata-store-url': store.hostPort, 'wait-timeout': '30s', ...params },
      secrets: {
        'metadata-store-access-token': { accessToken: TEST_TOKEN },
        'metadata-store-cert': { caCrt: fixture.tls.caCert },
      },
      configMaps,
      resultsDir,
    })
    const run = await runContainer(image, container)
    const results = Object.fromEntries(
      readdirSync(resultsDir).map((name) => [name, readFileSync(join(resultsDir, name), 'utf8')]),
    )
    return { run, results, container }
  }

  it('passes a clean image and writes every result', async () => {
    const { run, results, container } = await runStep([answer.image(cleanImageBody())])
    expect(container).toMatchObject({ readOnly: true, user: '65532:65532', entrypoint: ['/nodejs/bin/node'] })
    expect(run.code).toBe(EXIT.PASS)
    expect(results).toEqual({
      verdict: 'pass',
      critical: '0',
      high: '0',
      medium: '0',
      low: '0',
      unknown: '0',
      blocking: '',
      warnings: '0',
      kev: '0',
      suppressed: '0',
      reason: 'PASSED',
      message: 'PASS: nothing blocks at gate high.',
    })
  })

  it('fails an image with critical vulnerabilities and names them in the results', async () => {
    const { run, results } = await runStep([answer.image(sampleImageBody())])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(results).toEqual({
      verdict: 'fail',
      critical: '2',
      high: '2',
      medium: '1',
      low: '0',
      unknown: '0',
      blocking: 'CVE-2021-44228,CVE-2021-45046,CVE-2023-0464,CVE-2023-0286',
      warnings: '0',
      kev: '0',
      suppressed: '0',
      reason: 'POLICY_VIOLATION',
      message: 'FAIL: 4 vulnerabilities (4 findings) block at gate high.',
    })
    expect(Object.values(results).join('').length).toBeLessThan(1024)
    expect(run.stdout + run.stderr).not.toContain(TEST_TOKEN)
  })

  it('waits through 404s, then judges by the gate param', async () => {
    const { run, results } = await runStep([...repeat(2, answer.notFound()), answer.image(sampleImageBody())], {
      gate: 'critical',
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr.match(/not in the store yet \(404\)/g)).toHaveLength(2)
    expect(results).toMatchObject({ verdict: 'fail', critical: '2', blocking: 'CVE-2021-44228,CVE-2021-45046' })
  })

  it('rolls out in audit mode with exemptions from the ConfigMap: the run succeeds, the results tell the truth', async () => {
    const exemptions = {
      'exemptions.yaml':
        'exemptions:\n  - id: CVE-2021-44228\n    reason: JNDI lookups disabled\n    expires: 2999-12-31\n',
    }
    const { run, results } = await runStep(
      [answer.image(sampleImageBody())],
      { mode: 'audit', 'exemptions-file': '/etc/amr-policy-gate/exemptions.yaml' },
      { 'amr-policy-gate-exemptions': exemptions },
    )
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('AUDIT: the gate would have failed here (exit 1, policy violated)')
    expect(run.stdout).toMatch(/CVE-2021-44228 .* exempt until 2999-12-31: JNDI lookups disabled/)
    expect(results).toMatchObject({
      verdict: 'fail',
      critical: '2',
      blocking: 'CVE-2021-45046,CVE-2023-0464,CVE-2023-0286',
    })
  })

  it('takes VEX documents from ConfigMap amr-policy-gate-vex: the statements suppress, the results count them', async () => {
    const openVex = (statement: Record<string, unknown>) =>
      JSON.stringify({
        '@context': 'https://openvex.dev/ns/v0.2.0',
        '@id': 'https://example.com/vex/1',
        author: 'Platform team',
        timestamp: '2026-11-01T00:00:00Z',
        version: 1,
        statements: [statement],
      })
    const { run, results } = await runStep(
      [answer.image(sampleImageBody())],
      { vex: '/etc/amr-policy-gate-vex' },
      {
        'amr-policy-gate-vex': {
          // The image by its reference, and the store's package (which has no purl) by name and version.
          'team.openvex.json': openVex({
            vulnerability: { name: 'CVE-2023-0286' },
            products: [{ '@id': SAMPLE_IMAGE, subcomponents: [{ '@id': 'pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1.7' }] }],
            status: 'not_affected',
            justification: 'vulnerable_code_not_in_execute_path',
          }),
          'vendor.openvex.json': openVex({
            vulnerability: { name: 'CVE-2021-45046' },
            products: [
              {
                '@id':
                  'pkg:oci/tanzu-java-web-app-dev?repository_url=registry.example.com/tap/workloads/tanzu-java-web-app-dev',
                subcomponents: [{ '@id': 'pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1' }],
              },
            ],
            status: 'fixed',
          }),
        },
      },
    )
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(run.stdout).toMatch(/CVE-2023-0286 .*VEX not_affected: vulnerable_code_not_in_execute_path/)
    expect(run.stdout).toMatch(
      /CVE-2021-45046 .*VEX fixed \(\/etc\/amr-policy-gate-vex\/vendor.openvex.json, statement 1/,
    )
    expect(results).toMatchObject({ verdict: 'fail', blocking: 'CVE-2021-44228,CVE-2023-0464', suppressed: '2' })
  })

  it(
    'takes a ScanPolicy, a KEV catalog and a warning level from ConfigMaps and params, and counts warnings and KEV ' +
      'in the results',
    async () => {
      const kev = readFileSync(
        new URL('../fixtures/kev/known_exploited_vulnerabilities.json', import.meta.url),
        'utf8',
      ).replace(/"dateReleased": "[^"]*"/, `"dateReleased": "${new Date().toISOString()}"`)
      const scanPolicy = readFileSync(
        new URL('../fixtures/scan-policy/grype-scan-policy.yaml', import.meta.url),
        'utf8',
      ).replace('["Critical", "High", "UnknownSeverity"]', '["Critical", "UnknownSeverity"]')
      const { run, results } = await runStep(
        [answer.image(sampleImageBody())],
        {
          gate: '',
          'scan-policy-file': '/etc/amr-policy-gate/scan-policy.yaml',
          'kev-file': '/etc/amr-policy-gate-kev/known_exploited_vulnerabilities.json',
          'warn-at': 'medium',
        },
        {
          'amr-policy-gate-exemptions': { 'scan-policy.yaml': scanPolicy },
          'amr-policy-gate-kev': { 'known_exploited_vulnerabilities.json': kev },
        },
      )
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toContain("ScanPolicy scan-policy (TAP's grype template): gate critical")
      expect(results).toMatchObject({
        verdict: 'fail',
        blocking: 'CVE-2021-44228,CVE-2021-45046',
        warnings: '3',
        kev: '2',
      })
    },
  )

  it('blocks only on what is new since baseline-image, the running image read from the same store', async () => {
    const baselineDigest = `sha256:${'b'.repeat(64)}`
    const sample = sampleImageBody()
    // The running image has every finding but openssl's.
    const running = {
      ...sample,
      Digest: baselineDigest,
      Packages: (sample.Packages as Array<{ Name: string }>).filter((entry) => entry.Name !== 'openssl'),
    }
    const { run, results } = await runStep(
      [answer.image(sampleImageBody())],
      { 'baseline-image': `registry.example.com/app@${baselineDigest}` },
      {},
      { [baselineDigest]: [answer.image(running)] },
    )
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(results).toMatchObject({ verdict: 'fail', blocking: 'CVE-2023-0464,CVE-2023-0286', warnings: '2' })
  })

  it('writes verdict error when there is no verdict, and skipped for gate none', async () => {
    const timedOut = await runStep([answer.notFound()], { 'wait-timeout': '1s' })
    expect(timedOut.run.code).toBe(EXIT.NO_VERDICT)
    expect(timedOut.results).toEqual({
      verdict: 'error',
      critical: '',
      high: '',
      medium: '',
      low: '',
      unknown: '',
      blocking: '',
      warnings: '',
      kev: '',
      suppressed: '',
      reason: 'TIMEOUT',
      message: expect.stringMatching(/^no verdict: timed out after 1s/),
    })
    await fixture.store.close()
    const skipped = await runStep([answer.image(sampleImageBody())], { gate: 'none' })
    expect(skipped.run.code).toBe(EXIT.PASS)
    expect(skipped.results).toMatchObject({ verdict: 'skipped', reason: 'GATE_NONE' })
  })
})

describe.skipIf(!hasDocker || missingTools.length > 0)(
  'the Task reading scan results from a real registry, in the built image',
  () => {
    const fixture = useStoreFixture()
    let image: string
    let registry: Registry
    let kubernetes: KubernetesApi | undefined
    let bundle = ''

    beforeAll(async () => {
      image = (await buildGateImage()).tag
      registry = await startRegistry('basic')
      const { digest } = await registry.push('project/app-dev-team-scan-results', 'workload-uid', {
        layers: [{ files: { 'scan.cdx.json': cycloneDxOf(SAMPLE_DIGEST) } }],
      })
      bundle = `${registry.host}/project/app-dev-team-scan-results@${digest}`
    }, 300_000)

    afterAll(async () => {
      await kubernetes?.close()
      await registry?.close()
    })

    /**
     * The step with the registry credentials and CA the Task mounts, the selector the template passes, and no store
     * secret at all.
     */
    async function runStep(scanResult: string, pod?: Parameters<typeof taskStepAsContainer>[1]['pod']) {
      const resultsDir = mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
      const container = taskStepAsContainer(task, {
        image,
        params: {
          image: SAMPLE_IMAGE,
          'scan-result': scanResult,
          'scan-selector': 'carto.run/workload-name=app',
          'registry-ca-file': '/etc/amr-policy-gate-registry-ca/ca.crt',
          'wait-timeout': '30s',
        },
        secrets: {
          'registry-credentials': {
            '.dockerconfigjson': JSON.stringify({
              auths: { [registry.host]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
            }),
          },
        },
        configMaps: { 'amr-policy-gate-registry-ca': { 'ca.crt': registry.tls.caCert } },
        resultsDir,
        ...(pod ? { pod } : {}),
      })
      const run = await runContainer(image, container)
      const results = Object.fromEntries(
        readdirSync(resultsDir).map((name) => [name, readFileSync(join(resultsDir, name), 'utf8')]),
      )
      return { run, results }
    }

    it('with scan-result auto, reads the scan the ImageVulnerabilityScan published', async () => {
      kubernetes = await startKubernetes(fixture.tls, [
        [{ name: 'app-trivy-scan-x7k2p', digest: SAMPLE_DIGEST, succeeded: { status: 'True' }, scanResult: bundle }],
      ])
      // The real path, not POLICY_SERVICE_ACCOUNT_DIR: the service account is mounted where Kubernetes mounts it.
      const { run, results } = await runStep('auto', {
        env: {
          KUBERNETES_SERVICE_HOST: kubernetes.env.KUBERNETES_SERVICE_HOST!,
          KUBERNETES_SERVICE_PORT: kubernetes.env.KUBERNETES_SERVICE_PORT!,
        },
        serviceAccountDir: kubernetes.serviceAccountDir,
      })
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toContain(`reading the scan results ${bundle}`)
      expect(kubernetes.listed).toEqual([`?labelSelector=${encodeURIComponent('carto.run/workload-name=app')}`])
      expect(results).toMatchObject({ verdict: 'fail', critical: '1', blocking: 'CVE-2024-9999' })
    }, 120_000)

    it('with a fixed reference, reads it, the scan selector the template always passes going unused', async () => {
      const { run, results } = await runStep(bundle)
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(results.blocking).toBe('CVE-2024-9999')
    }, 120_000)
  },
)

describe('config/view-cluster/metadata-store-read-client.yaml', () => {
  const [account, secret, binding] = loadManifests('view-cluster/metadata-store-read-client.yaml')

  it(
    'makes a service account with a token secret (Kubernetes 1.24+ makes none by itself), bound to the read-only ' +
      'role',
    () => {
      expect(account).toMatchObject({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'metadata-store-read-client', namespace: 'metadata-store' },
      })
      expect(secret).toMatchObject({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/service-account-token',
        metadata: {
          name: 'metadata-store-read-client',
          namespace: 'metadata-store',
          annotations: { 'kubernetes.io/service-account.name': 'metadata-store-read-client' },
        },
      })
      expect(binding).toMatchObject({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'metadata-store-read-only' },
      })
      expect(binding!.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'metadata-store-read-client', namespace: 'metadata-store' },
      ])
    },
  )
})

describe('config/tap-overlay/ootb-supply-chain-testing-scanning-policy.yaml', () => {
  const [secret] = loadManifests('tap-overlay/ootb-supply-chain-testing-scanning-policy.yaml')
  const overlay = Object.values((secret!.stringData ?? {}) as Record<string, string>)[0] ?? ''
  const [imageTemplate] = loadManifests('cartographer.yaml')

  it('is a Secret in tap-install holding one ytt overlay for both chains of the testing-and-scanning package', () => {
    expect(secret).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: 'ootb-supply-chain-testing-scanning-policy', namespace: 'tap-install' },
    })
    expect(overlay).toMatch(/^#@ load\("@ytt:overlay", "overlay"\)$/m)
    expect(overlay).toContain(
      'overlay.subset({"kind": "ClusterSupplyChain", "metadata": {"name": "source-test-scan-to-url"}})',
    )
    expect(overlay).toContain(
      'overlay.subset({"kind": "ClusterSupplyChain", "metadata": {"name": "scanning-image-scan-to-url"}})',
    )
    expect(overlay).toContain('#@overlay/match by=overlay.or_op(source, prebuilt), expects=2')
    expect(overlay).toContain(`"name": "${imageTemplate!.metadata.name}"`)
  })
})
