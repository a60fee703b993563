// Runs the built bundle as a child process, the way a pipeline does, and keeps every output it
// captured so that the shared secret check (test/support/secret-hygiene.ts) can read them all.
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'

export const BUNDLE = new URL('../../dist/policy.mjs', import.meta.url).pathname

export interface GateRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Every output captured in this test file, for the secret check after each test. */
export const capturedOutputs: string[] = []

export function captureOutput(...outputs: string[]): void {
  capturedOutputs.push(...outputs)
}

/** The child's environment starts empty: the host's NODE_EXTRA_CA_CERTS or proxy settings must not leak in. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra }
}

export function runGate(
  args: string[],
  options: {
    env?: Record<string, string>
    stdin?: string
    /** Flags for node itself, e.g. a smaller heap. */
    nodeArgs?: string[]
    onStderr?: (text: string, child: import('node:child_process').ChildProcess) => void
  } = {},
): Promise<GateRun> {
  const started = performance.now()
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BUNDLE, ...args], {
    env: cleanEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
    options.onStderr?.(stderr, child)
  })
  child.stdin.end(options.stdin ?? '')
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      captureOutput(stdout, stderr)
      // Killed by a signal: the code the shell and Kubernetes report (143 for SIGTERM, 130 for SIGINT).
      resolve({
        code: code ?? (signal ? 128 + constants.signals[signal] : null),
        stdout,
        stderr,
        ms: performance.now() - started,
      })
    })
  })
}

/** A scratch folder with the given files; returns their paths by name. */
export function writeFiles(files: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'policy-gate-test-'))
  return Object.fromEntries(
    Object.entries(files).map(([name, content]) => {
      const path = join(dir, name)
      writeFileSync(path, content)
      return [name, path]
    }),
  )
}
