import { describe, it, expect } from 'vitest'
import { isMain, main } from '../policy.ts'
import { UsageError, EXIT } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST, sampleImageBody } from './support/documents.ts'
import { TEST_TOKEN } from './support/simulator.ts'
// The whole run, in process: main() with the injection bundle (Io) filled with fakes: a clock that moves
// only when the gate sleeps, files in a map, and a store that answers from a script. Every wait rule of a
// run is checked here in milliseconds and deterministically; test/deadline.test.ts keeps the real-time proof.
import { Readable } from 'node:stream'
import { type Io } from '../gate/io.ts'
import { type StoreResponse } from '../gate/wait.ts'

const START = Date.parse('2026-11-28T12:00:00Z')
const json = (status: number, body: unknown, headers: Record<string, string> = {}): StoreResponse => ({
  status,
  headers,
  body: JSON.stringify(body),
})
const NOT_FOUND = json(404, { message: 'image not found' })
const SAMPLE = json(200, sampleImageBody())

interface FakeRun {
  readonly env?: Record<string, string>
  /** The image endpoint's answers in turn; the last repeats. */
  readonly answers?: readonly StoreResponse[]
  readonly files?: Record<string, string>
  readonly dirs?: readonly string[]
  readonly failWrites?: boolean
  /** The terminal's width, as a TTY reports it. */
  readonly columns?: number
}

async function runInProcess(argv: string[], fake: FakeRun = {}) {
  let now = START
  let served = 0
  const out: string[] = []
  const err: string[] = []
  const written = new Map<string, string>()
  const requests: Array<{ at: number; path: string }> = []
  let connections = 0
  const files = fake.files ?? {}
  const dirs = fake.dirs ?? []
  const io: Io = {
    env: { GATE: 'high', METADATA_STORE_URL: 'store.example.com', ACCESS_TOKEN_FILE: '/var/run/token', ...fake.env },
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    stdin: Readable.from([]),
    isTTY: fake.columns !== undefined,
    ...(fake.columns === undefined ? {} : { columns: fake.columns }),
    signal: new AbortController().signal,
    now: () => now,
    sleep: async (ms) => void (now += ms),
    random: () => 0.5,
    blocking: (work) => work(),
    availableMemory: () => 2 ** 31,
    files: {
      fileExists: (path) => path in files,
      isDirectory: (path) => dirs.includes(path),
      isWritableDirectory: (path) => dirs.includes(path),
      read: async (path, what) => {
        if (!(path in files)) throw new UsageError('FILE', `cannot read ${what} (ENOENT)`)
        return files[path]!
      },
      writeAll: (entries) => {
        if (fake.failWrites) throw Object.assign(new Error('read-only file system'), { code: 'EROFS' })
        for (const [path, content] of entries) written.set(path, content)
      },
      remove: (path) => void written.delete(path),
      list: (path) =>
        dirs.includes(path)
          ? Object.keys(files)
              .filter((file) => file.startsWith(`${path}/`))
              .map((file) => file.slice(path.length + 1))
              .sort()
          : undefined,
    },
    connect: async () => {
      connections++
      return {
        get: async (url) => {
          requests.push({ at: now - START, path: url.pathname })
          const answers = fake.answers ?? [SAMPLE]
          const { status, headers, body } = answers[Math.min(served++, answers.length - 1)]!
          return { status, headers, body: Buffer.from(body) }
        },
        lines: async () => {
          throw new Error('these runs read the store only')
        },
        send: async () => {
          throw new Error('these runs read the store only')
        },
        close: async () => undefined,
      }
    },
  }
  const code = await main([...argv, SAMPLE_DIGEST], io)
  return { code, stdout: out.join(''), stderr: err.join(''), written, requests, connections, elapsed: now - START }
}

const TOKEN_FILE = { '/var/run/token': `${TEST_TOKEN}\n` }

describe('--help in a terminal', () => {
  it("wraps to the terminal's width, and to 80 columns when stdout is not one", async () => {
    const widest = (text: string) => Math.max(...text.split('\n').map((line) => line.length))
    const [wide, piped] = [await runInProcess(['--help'], { columns: 140 }), await runInProcess(['--help'])]
    expect([wide.code, piped.code]).toEqual([EXIT.PASS, EXIT.PASS])
    expect(widest(piped.stdout)).toBeLessThanOrEqual(80)
    expect(widest(wide.stdout)).toBeGreaterThan(100)
    expect(widest(wide.stdout)).toBeLessThanOrEqual(140)
  })
})

describe('a run on a fake clock', () => {
  it('polls through three 404s at the poll interval, then fails on the critical findings', async () => {
    const run = await runInProcess([], { answers: [NOT_FOUND, NOT_FOUND, NOT_FOUND, SAMPLE], files: TOKEN_FILE })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.requests.map((request) => request.at)).toEqual([0, 5_000, 10_000, 15_000])
    expect(
      run.stderr.match(/not in the store yet \(404\); attempt \d, \S+ elapsed, \S+ left; next try in 5s/g),
    ).toHaveLength(3)
    expect(run.stdout).toMatch(/FAIL: 4 vulnerabilities \(4 findings\) block at gate high\./)
  })

  it('ends exactly at --timeout when the store only says 404', async () => {
    const run = await runInProcess(['--timeout', '20s'], { answers: [NOT_FOUND], files: TOKEN_FILE })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.elapsed).toBe(20_000)
    expect(run.stderr).toContain('no verdict: timed out after 20s waiting for sha256:')
    // The fifth try would come at 20 s, with no time left: the run ends instead.
    expect(run.requests.map((request) => request.at)).toEqual([0, 5_000, 10_000, 15_000])
  })

  it('waits no longer than the time left when Retry-After asks for more', async () => {
    const run = await runInProcess(['--timeout', '60s'], {
      answers: [json(503, {}, { 'retry-after': '120' })],
      files: TOKEN_FILE,
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.elapsed).toBe(60_000)
    expect(run.requests).toHaveLength(1)
  })

  it('redacts the token from every line when the store echoes it', async () => {
    const run = await runInProcess([], {
      answers: [json(500, { echoed: `Bearer ${TEST_TOKEN}` }), SAMPLE],
      files: TOKEN_FILE,
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain('[redacted]')
    expect(run.stderr + run.stdout).not.toContain(TEST_TOKEN.slice(0, 12))
  })

  it('never connects for gate none', async () => {
    const run = await runInProcess(['--gate', 'none'])
    expect(run.code).toBe(EXIT.PASS)
    expect(run.connections).toBe(0)
  })
})

describe('what a run writes', () => {
  it('writes the Tekton results with the verdict last, then prints the summary', async () => {
    const run = await runInProcess(['--results-dir', '/tekton/results'], {
      files: TOKEN_FILE,
      dirs: ['/tekton/results'],
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect([...run.written.keys()].at(-1)).toBe('/tekton/results/verdict')
    expect(Object.fromEntries(run.written)).toMatchObject({
      '/tekton/results/verdict': 'fail',
      '/tekton/results/critical': '2',
    })
  })

  it('exits 3 with the verdict still in the JSON when the results cannot be recorded', async () => {
    const run = await runInProcess(['--results-dir', '/tekton/results', '--format', 'json'], {
      files: TOKEN_FILE,
      dirs: ['/tekton/results'],
      failWrites: true,
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout)).toMatchObject({
      verdict: 'fail',
      exitCode: EXIT.NO_VERDICT,
      enforcedExitCode: EXIT.NO_VERDICT,
      error: { code: 'RESULTS_NOT_WRITTEN' },
    })
  })

  it('exits 0 in audit mode when the token is rejected, and says the gate would have failed', async () => {
    const run = await runInProcess(['--mode', 'audit', '--format', 'json'], {
      answers: [{ status: 401, headers: {}, body: 'Unauthorized' }],
      files: TOKEN_FILE,
    })
    expect(run.code).toBe(EXIT.PASS)
    expect(JSON.parse(run.stdout)).toMatchObject({
      verdict: 'error',
      exitCode: 0,
      enforcedExitCode: 3,
      error: { code: 'TOKEN_REJECTED' },
    })
    expect(run.stderr).toContain('AUDIT: the gate would have failed here (exit 3, no verdict)')
  })

  it('ends with a usage error when the token file is missing, before connecting', async () => {
    const run = await runInProcess([])
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain('cannot read the token file named by ACCESS_TOKEN_FILE (ENOENT)')
    expect(run.connections).toBe(0)
  })
})

describe('isMain', () => {
  const links = (path: string) => (path === '/usr/local/bin/gate' ? '/app/policy.mjs' : path)
  it.each([
    ['the bundle itself', '/app/policy.mjs', true],
    ['a link to it', '/usr/local/bin/gate', true],
    ['another script that imports it', '/app/test.mjs', false],
    ['no script (node -e)', undefined, false],
  ] as const)('for %s (%s): %s', (_name, script, expected) => {
    expect(isMain('file:///app/policy.mjs', script, links)).toBe(expected)
  })

  it('is false when the script cannot be resolved', () => {
    expect(
      isMain('file:///app/policy.mjs', '/gone', () => {
        throw Object.assign(new Error('gone'), { code: 'ENOENT' })
      }),
    ).toBe(false)
  })
})
