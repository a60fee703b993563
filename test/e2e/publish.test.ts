// Publishing like a release, against a real registry: Debian's docker-registry (the CNCF distribution registry
// 2.8) on loopback with TLS (a CA made here) and htpasswd auth (test/support/registry.ts). scripts/publish.sh pushes
// linux/amd64 and
// linux/arm64 and their OCI index; the index must list both, each image must carry a node binary of its own
// architecture, and the image pulled by digest, as a Tekton node pulls it, must run as the Task's step.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gunzipSync } from 'node:zlib'
import { Agent, request } from 'undici'
import { Spec, Validation } from '@cyclonedx/cyclonedx-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { dockerForTests, runContainer } from '../support/container.ts'
import { SAMPLE_IMAGE, sampleImageBody } from '../support/documents.ts'
import { useStoreFixture } from '../support/fixture.ts'
import {
  missingRegistryTools,
  REGISTRY_PASSWORD,
  REGISTRY_USER,
  startRegistry,
  type Registry,
} from '../support/registry.ts'
import { TEST_TOKEN, answer } from '../support/simulator.ts'
import { loadTask, taskStepAsContainer } from '../support/tekton.ts'

const run = promisify(execFile)
const ROOT = new URL('../..', import.meta.url).pathname
/** A key cosign generate-key-pair wrote (empty password), and its public key: test/fixtures/attest/SOURCES.md. */
const COSIGN_KEY = join(ROOT, 'test/fixtures/attest/conforma-cosign.key')
const COSIGN_PUB = join(ROOT, 'test/fixtures/attest/conforma-cosign.pub')
const hasDocker = await dockerForTests()
const missingTools = await missingRegistryTools(['buildah', 'docker-registry', 'htpasswd'])

/** What a script run printed and how it ended. */
async function script(
  args: string[],
  env: Record<string, string>,
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn('bash', args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number]
  return { code, stdout, stderr }
}

/** The machine code a file's ELF header names: 0x3e x86-64, 0xb7 aarch64. */
function elfMachine(header: Buffer): number {
  expect(header.subarray(0, 4).toString('latin1')).toBe('\x7fELF')
  return header.readUInt16LE(18)
}

/** The regular files of an uncompressed tar, by name (ustar headers; a leading ./ dropped). */
function tarFiles(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>()
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('latin1')
        .replace(/\0.*$/s, '')
    const name = `${field(345, 155) ? `${field(345, 155)}/` : ''}${field(0, 100)}`.replace(/^\.\//, '')
    const size = Number.parseInt(field(124, 12).trim() || '0', 8)
    if (header[156] === 0x30 || header[156] === 0) files.set(name, tar.subarray(offset + 512, offset + 512 + size))
    offset += 512 + Math.ceil(size / 512) * 512
  }
  return files
}

describe.skipIf(!hasDocker || missingTools.length > 0)('scripts/publish.sh against a real registry', () => {
  const fixture = useStoreFixture()
  const work = mkdtempSync(join(tmpdir(), 'publish-test-'))
  const dockerConfig = join(work, 'docker')
  let registry: Registry | undefined
  let host = ''
  let certsDir = ''
  let client: Agent
  let pushed = ''
  let publishedLog = ''
  const repository = () => `${host}/tools/amr-policy-gate`
  const tag = `test-${process.pid}`

  /** GET from the registry's API with the test's CA and credentials. */
  async function registryGet(path: string, accept: string): Promise<Buffer> {
    const response = await request(`https://${host}${path}`, {
      dispatcher: client,
      headers: { authorization: registry!.auth, accept },
    })
    expect(response.statusCode, path).toBe(200)
    return Buffer.from(await response.body.arrayBuffer())
  }

  beforeAll(async () => {
    registry = await startRegistry('basic')
    host = registry.host
    // Docker and buildah trust a registry's CA from here (as users of a private registry set it up).
    certsDir = `/etc/docker/certs.d/${host}`
    mkdirSync(certsDir, { recursive: true })
    writeFileSync(join(certsDir, 'ca.crt'), registry.tls.caCert)
    client = new Agent({ connect: { ca: registry.tls.caCert } })
    // `docker login` as a publisher would run it; the credentials land in DOCKER_CONFIG for publish.sh to use.
    const login = spawn('docker', ['login', host, '-u', REGISTRY_USER, '--password-stdin'], {
      env: { ...process.env, DOCKER_CONFIG: dockerConfig },
      stdio: ['pipe', 'ignore', 'inherit'],
    })
    login.stdin.end(REGISTRY_PASSWORD)
    const [loggedIn] = (await once(login, 'close')) as [number]
    expect(loggedIn, 'docker login').toBe(0)
  }, 60_000)

  afterAll(async () => {
    await registry?.close()
    if (certsDir) rmSync(certsDir, { recursive: true, force: true })
    await client?.close()
    if (pushed) await run('docker', ['rmi', '-f', pushed]).catch(() => undefined)
    rmSync(work, { recursive: true, force: true })
  })

  it('refuses a tree with uncommitted changes unless told to', async () => {
    const scratch = mkdtempSync(join(work, 'dirty-'))
    mkdirSync(join(scratch, 'scripts'))
    copyFileSync(join(ROOT, 'scripts/publish.sh'), join(scratch, 'scripts/publish.sh'))
    copyFileSync(join(ROOT, 'scripts/lib.sh'), join(scratch, 'scripts/lib.sh'))
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ version: '9.9.9', repository: { url: 'https://example.com/gate' } }),
    )
    await run('git', ['init', '-q', scratch])
    const refused = await script([join(scratch, 'scripts/publish.sh'), `${repository()}:dirty`], {
      DOCKER_CONFIG: dockerConfig,
    })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('the working tree has uncommitted changes')
  })

  it('stops when it cannot tell whether the tag is published (a registry it has neither credentials nor the CA for), never overwrites', async () => {
    const untrusted = await startRegistry('basic')
    try {
      const refused = await script(
        ['scripts/publish.sh', '--allow-dirty', `${untrusted.host}/tools/amr-policy-gate:once`],
        {
          DOCKER_CONFIG: dockerConfig,
        },
      )
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain(
        `cannot tell whether ${untrusted.host}/tools/amr-policy-gate:once is already published`,
      )
      expect(refused.stderr).toMatch(/no basic auth credentials|x509|certificate/)
      expect(refused.stderr).not.toContain('building linux/')
    } finally {
      await untrusted.close()
    }
  })

  it(
    'pushes linux/amd64, linux/arm64 and their index, prints REPOSITORY@sha256:<index digest> last, and sets the ' +
      'Task',
    async () => {
      const task = join(work, 'task.yaml')
      copyFileSync(join(ROOT, 'config/task.yaml'), task)
      const published = await script(
        ['scripts/publish.sh', '--sign', COSIGN_KEY, '--allow-dirty', '--set-task', `${repository()}:${tag}`],
        { DOCKER_CONFIG: dockerConfig, PUBLISH_TASK_FILE: task, COSIGN_PASSWORD: '' },
      )
      expect(published.code, published.stderr).toBe(0)
      pushed = published.stdout.trim().split('\n').at(-1)!
      publishedLog = published.stderr
      expect(pushed).toMatch(new RegExp(`^${repository().replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`))
      expect(readFileSync(task, 'utf8')).toContain(`      image: ${pushed}\n`)
      const index = JSON.parse(
        (
          await registryGet(`/v2/tools/amr-policy-gate/manifests/${tag}`, 'application/vnd.oci.image.index.v1+json')
        ).toString(),
      )
      expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json')
      expect(
        index.manifests
          .map(
            (manifest: { platform: { os: string; architecture: string } }) =>
              `${manifest.platform.os}/${manifest.platform.architecture}`,
          )
          .sort(),
      ).toEqual(['linux/amd64', 'linux/arm64'])
    },
    600_000,
  )

  it.each([
    ['arm64', 0xb7],
    ['amd64', 0x3e],
  ])(
    'gives the %s image a node binary of its own architecture',
    async (architecture, machine) => {
      expect(pushed, 'published by the test above').not.toBe('')
      const entry = await imageOf(architecture)
      const manifest = JSON.parse(
        (await registryGet(`/v2/tools/amr-policy-gate/manifests/${entry.digest}`, entry.mediaType)).toString(),
      )
      let header: Buffer | undefined
      for (const layer of manifest.layers as Array<{ digest: string }>) {
        header = tarFiles(gunzipSync(await registryGet(`/v2/tools/amr-policy-gate/blobs/${layer.digest}`, '*/*')))
          .get('nodejs/bin/node')
          ?.subarray(0, 64)
        if (header) break
      }
      expect(header, 'nodejs/bin/node in a layer').toBeDefined()
      expect(elfMachine(header!)).toBe(machine)
    },
    120_000,
  )

  it.each(['amd64', 'arm64'])(
    "attaches the %s image's SBOM as an OCI referrer: CycloneDX 1.6 that validates, listing its packages with versions",
    async (architecture) => {
      expect(pushed, 'published by the test above').not.toBe('')
      const image = await imageOf(architecture)
      // distribution 2.8 has no referrers API: the referrers are an index under the fallback tag (OCI distribution 1.1).
      const referrers = JSON.parse(
        (
          await registryGet(
            `/v2/tools/amr-policy-gate/manifests/sha256-${image.digest.slice(7)}`,
            'application/vnd.oci.image.index.v1+json',
          )
        ).toString(),
      )
      const [descriptor] = referrers.manifests
      expect(descriptor).toMatchObject({
        artifactType: 'application/vnd.cyclonedx+json',
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      })
      const artifact = JSON.parse(
        (
          await registryGet(`/v2/tools/amr-policy-gate/manifests/${descriptor.digest}`, descriptor.mediaType)
        ).toString(),
      )
      expect(artifact.subject).toEqual({ mediaType: image.mediaType, digest: image.digest, size: image.size })
      const sbom = (await registryGet(`/v2/tools/amr-policy-gate/blobs/${artifact.layers[0].digest}`, '*/*')).toString()
      expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(sbom)).toBeNull()
      const components = JSON.parse(sbom).components as Array<{ name: string; version: string; purl?: string }>
      const versionOf = (name: string) => components.find((component) => component.name === name)?.version
      for (const name of ['libc6', 'libstdc++6', 'node', 'undici', 'yaml', 'packageurl-js', '@noble/ciphers'])
        expect(versionOf(name), name).toMatch(/\d/)
      expect(components.find((component) => component.name === 'libc6')?.purl).toContain(`arch=${architecture}`)
      // A scoped package's purl has the scope as namespace (purl spec, npm type).
      expect(components.find((component) => component.name === '@noble/ciphers')?.purl).toMatch(
        /^pkg:npm\/%40noble\/ciphers@\d/,
      )
      expect(JSON.parse(sbom).metadata.component.properties).toEqual([
        { name: 'oci:image:architecture', value: architecture },
      ])
    },
  )

  it("signs the index and each image as cosign does, with cosign's key: openssl verifies each payload", async () => {
    expect(pushed, 'published by the test above').not.toBe('')
    const indexDigest = pushed.split('@')[1]!
    const images = await Promise.all(['amd64', 'arm64'].map(imageOf))
    for (const digest of [indexDigest, ...images.map((image) => image.digest)]) {
      expect(publishedLog).toContain(`signed ${repository()}@${digest}`)
      const manifest = JSON.parse(
        (
          await registryGet(
            `/v2/tools/amr-policy-gate/manifests/${digest.replace(':', '-')}.sig`,
            'application/vnd.oci.image.manifest.v1+json',
          )
        ).toString(),
      )
      // cosign's layout (specs/SIGNATURE_SPEC.md): the simple-signing payload as a layer, its signature annotated.
      expect(manifest.layers).toEqual([
        expect.objectContaining({
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          annotations: { 'dev.cosignproject.cosign/signature': expect.stringMatching(/^[A-Za-z0-9+/]+=*$/) },
        }),
      ])
      const payload = await registryGet(`/v2/tools/amr-policy-gate/blobs/${manifest.layers[0].digest}`, '*/*')
      expect(JSON.parse(payload.toString())).toEqual({
        critical: {
          identity: { 'docker-reference': repository() },
          image: { 'docker-manifest-digest': digest },
          type: 'cosign container image signature',
        },
        optional: null,
      })
      const files = join(work, `sig-${digest.slice(7, 19)}`)
      mkdirSync(files)
      writeFileSync(join(files, 'payload'), payload)
      writeFileSync(
        join(files, 'sig'),
        Buffer.from(manifest.layers[0].annotations['dev.cosignproject.cosign/signature'], 'base64'),
      )
      const verified = await run('openssl', [
        'dgst',
        '-sha256',
        '-verify',
        COSIGN_PUB,
        '-signature',
        join(files, 'sig'),
        join(files, 'payload'),
      ])
      expect(verified.stdout.trim()).toBe('Verified OK')
    }
  })

  it('stops before building when the signing key cannot be opened', async () => {
    const refused = await script(
      ['scripts/publish.sh', '--sign', COSIGN_KEY, '--allow-dirty', `${repository()}:nokey`],
      {
        DOCKER_CONFIG: dockerConfig,
        COSIGN_PASSWORD: 'not-the-password',
      },
    )
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('cannot be decrypted with the password given: check COSIGN_PASSWORD')
    expect(refused.stderr).not.toContain('building linux/')
  })

  /** The pushed index's descriptor of one architecture's image. */
  async function imageOf(architecture: string): Promise<{ mediaType: string; digest: string; size: number }> {
    const index = JSON.parse(
      (
        await registryGet(
          `/v2/tools/amr-policy-gate/manifests/${pushed.split('@')[1]}`,
          'application/vnd.oci.image.index.v1+json',
        )
      ).toString(),
    )
    return index.manifests.find(
      (manifest: { platform: { architecture: string } }) => manifest.platform.architecture === architecture,
    )
  }

  /** The files of an imgpkg bundle (one layer of files, the config labelled dev.carvel.imgpkg.bundle). */
  async function bundleFiles(repositoryPath: string, digest: string): Promise<Record<string, string>> {
    const manifest = JSON.parse(
      (
        await registryGet(`/v2/${repositoryPath}/manifests/${digest}`, 'application/vnd.oci.image.manifest.v1+json')
      ).toString(),
    )
    const config = JSON.parse(
      (await registryGet(`/v2/${repositoryPath}/blobs/${manifest.config.digest}`, '*/*')).toString(),
    )
    expect(config.config.Labels).toMatchObject({ 'dev.carvel.imgpkg.bundle': 'true' })
    const files: Record<string, string> = {}
    for (const layer of manifest.layers as Array<{ digest: string }>) {
      const tar = gunzipSync(await registryGet(`/v2/${repositoryPath}/blobs/${layer.digest}`, '*/*'))
      for (const [name, content] of tarFiles(tar)) files[name] = content.toString()
    }
    return files
  }

  it('pushes the Carvel package as an imgpkg bundle locking the image, and a package repository listing it', async () => {
    expect(pushed, 'published by the test above').not.toBe('')
    const packageBundle = /pushed the package bundle (\S+)/.exec(publishedLog)?.[1]
    const repositoryBundle = /pushed the package repository (\S+):/.exec(publishedLog)?.[1]
    expect(packageBundle).toMatch(new RegExp(`^${repository()}-package@sha256:[0-9a-f]{64}$`))
    const bundle = await bundleFiles('tools/amr-policy-gate-package', packageBundle!.split('@')[1]!)
    expect(bundle['.imgpkg/images.yml']).toContain(`- image: ${pushed}`)
    expect(Object.keys(bundle)).toEqual(
      expect.arrayContaining(['config/values-schema.yaml', 'config/namespaces.yaml', 'config/image.yaml']),
    )
    expect(bundle['config/image.yaml']).toContain(`image: ${pushed}`)
    const listing = await bundleFiles('tools/amr-policy-gate-repo', repositoryBundle!.split('@')[1]!)
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    const packageFile = Object.keys(listing).find((name) => name.startsWith('packages/'))!
    expect(packageFile).toBe(`packages/amr-policy-gate.amr-policy-gate.github.io/${version}.yml`)
    expect(listing[packageFile]).toContain(`image: ${packageBundle}`)
    expect(listing['.imgpkg/images.yml']).toContain(`- image: ${packageBundle}`)
  })

  it('refuses to push a version already in the registry unless told to', async () => {
    expect(pushed, 'published by the test above').not.toBe('')
    const again = await script(['scripts/publish.sh', '--allow-dirty', `${repository()}:${tag}`], {
      DOCKER_CONFIG: dockerConfig,
    })
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`${repository()}:${tag} is already in the registry`)
  })

  it('runs, pulled by digest as a Tekton node pulls it, as the Task step', async () => {
    expect(pushed, 'published by the test above').not.toBe('')
    await run('docker', ['pull', '-q', pushed], { env: { ...process.env, DOCKER_CONFIG: dockerConfig } })
    const store = await fixture.serve([answer.image(sampleImageBody())])
    const resultsDir = mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
    const container = taskStepAsContainer(loadTask(), {
      image: pushed,
      params: { image: SAMPLE_IMAGE, 'metadata-store-url': store.hostPort, 'wait-timeout': '30s' },
      secrets: {
        'metadata-store-access-token': { accessToken: TEST_TOKEN },
        'metadata-store-cert': { caCrt: fixture.tls.caCert },
      },
      configMaps: {},
      resultsDir,
    })
    const step = await runContainer(pushed, container)
    expect(step.code).toBe(EXIT.VIOLATION)
    expect(
      Object.fromEntries(readdirSync(resultsDir).map((name) => [name, readFileSync(join(resultsDir, name), 'utf8')])),
    ).toMatchObject({ verdict: 'fail', critical: '2' })
  }, 120_000)
})
