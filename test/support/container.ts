// The gate's image in real containers through testcontainers: built from the Dockerfile, run one-shot
// with host networking against the simulator on loopback, exit code and logs read from the runtime.
import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { GenericContainer, getContainerRuntimeClient, ImageName } from 'testcontainers'
import { captureOutput, type GateRun } from './gate.ts'

const ROOT = new URL('../..', import.meta.url).pathname
export const IMAGE_TAG = 'amr-policy-gate:test'
const LABELS = { 'amr-policy-gate.test': 'true' }

/** Whether a Docker daemon answers; the reason when not. */
export async function dockerStatus(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const client = await getContainerRuntimeClient()
    await client.info
    return { ok: true }
  } catch (error) {
    return { ok: false, reason: (error as Error).message }
  }
}

/**
 * Whether the container tests can run. Without a daemon they say so loudly and are skipped, except
 * under CI, where that is a failure: a skipped test is not a passing one.
 */
export async function dockerForTests(): Promise<boolean> {
  const status = await dockerStatus()
  if (status.ok) return true
  const message =
    `NO DOCKER DAEMON: the container tests cannot run (${status.reason}). Start one (scripts/dev.sh ` + `test does).`
  if (process.env.CI) throw new Error(`${message} Under CI this is a failure, not a skip.`)
  console.warn(`\n!!! ${message} They are SKIPPED here. !!!\n`)
  return false
}

export interface BuiltImage {
  readonly tag: string
  readonly base: string
}

/** Builds the image on the base scripts/base-image.sh picks (the real distroless one, or the offline stand-in). */
export async function buildGateImage(): Promise<BuiltImage> {
  const base = execFileSync('bash', [`${ROOT}scripts/base-image.sh`, '--resolve'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'))
  const baseDigest = execFileSync('docker', ['image', 'inspect', '-f', '{{.Id}}', base], { encoding: 'utf8' }).trim()
  await GenericContainer.fromDockerfile(ROOT)
    .withBuildArgs({ BASE_IMAGE: base, BASE_DIGEST: baseDigest, VERSION: version })
    .build(IMAGE_TAG, { deleteOnExit: false })
  return { tag: IMAGE_TAG, base }
}

export async function imageInfo(tag: string) {
  const client = await getContainerRuntimeClient()
  return client.image.inspect(ImageName.fromString(tag))
}

/** testcontainers has no option for a read-only root filesystem; Docker's HostConfig has. */
class GateContainer extends GenericContainer {
  withReadOnlyRootFilesystem(): this {
    this.hostConfig.ReadonlyRootfs = true
    return this
  }
}

export interface ContainerRun {
  /** The image's ENTRYPOINT arguments, as `docker run IMAGE ...args`. */
  readonly args?: string[]
  readonly env?: Record<string, string>
  /** Host file or folder → container path, mounted read-only like a Kubernetes secret volume. */
  readonly files?: Record<string, string>
  /** Host folder → container path, writable by anyone (like Tekton's /tekton/results emptyDir). */
  readonly writable?: Record<string, string>
  readonly entrypoint?: string[]
  /** `uid:gid`, as a securityContext's runAsUser/runAsGroup; default the image's USER. */
  readonly user?: string
  /** Default true: the Task runs the step with a read-only root filesystem. */
  readonly readOnly?: boolean
}

/** Runs the image once to completion; the container is removed whatever happens. */
export async function runContainer(tag: string, run: ContainerRun = {}): Promise<GateRun> {
  const started = performance.now()
  let container = new GateContainer(tag)
    .withNetworkMode('host')
    .withLabels(LABELS)
    .withEnvironment(run.env ?? {})
    .withCommand(run.args ?? [])
  if (run.readOnly ?? true) container = container.withReadOnlyRootFilesystem()
  if (run.entrypoint) container = container.withEntrypoint(run.entrypoint)
  if (run.user) container = container.withUser(run.user)
  const files = Object.entries(run.files ?? {})
  for (const [source] of files) {
    // Secret volumes are world-readable (defaultMode 0644): uid 65532 must read them.
    chmodSync(source, statSync(source).isDirectory() ? 0o755 : 0o644)
    // Only ever add bits to the parent: it may be /tmp itself, whose sticky, world-writable mode must stay.
    chmodSync(dirname(source), statSync(dirname(source)).mode | 0o755)
  }
  const writable = Object.entries(run.writable ?? {})
  for (const [source] of writable) chmodSync(source, 0o777)
  const mounts = [
    ...files.map(([source, target]) => ({ source, target, mode: 'ro' as const })),
    ...writable.map(([source, target]) => ({ source, target, mode: 'rw' as const })),
  ]
  if (mounts.length) container = container.withBindMounts(mounts)

  const started_ = await container.start()
  try {
    const client = await getContainerRuntimeClient()
    const docker = client.container.getById(started_.getId())
    const { StatusCode } = (await docker.wait()) as { StatusCode: number }
    const logs = (await docker.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer
    const { stdout, stderr } = demultiplex(logs)
    captureOutput(stdout, stderr)
    return { code: StatusCode, stdout, stderr, ms: performance.now() - started }
  } finally {
    await started_.stop({ remove: true }).catch(() => undefined)
  }
}

/** Docker's log stream without a TTY: frames of [stream, 0, 0, 0, size (4 bytes BE)] + payload. */
export function demultiplex(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = []
  const err: Buffer[] = []
  for (let offset = 0; offset + 8 <= buffer.length;) {
    const size = buffer.readUInt32BE(offset + 4)
    const payload = buffer.subarray(offset + 8, offset + 8 + size)
    ;(buffer[offset] === 2 ? err : out).push(payload)
    offset += 8 + size
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}
