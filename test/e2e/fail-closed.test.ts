// The rule at the edges of a run: the runtime is checked first, a configuration error found after the options
// were read still writes the report and the Tekton results, a document about another image is the wrong
// scan (DIGEST_MISMATCH), and a document that names no image digest is judged as the scan of what it names.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkDockerConfig } from '../../gate/registry.ts'
import { checkRuntime } from '../../gate/run.ts'
import { EXIT, UsageError } from '../../gate/vocabulary.ts'
import { SAMPLE_DIGEST, sampleImageBody } from '../support/documents.ts'
import { BUNDLE, cleanEnv, runGate, writeFiles } from '../support/gate.ts'

const FIXTURES = new URL('../fixtures/cyclonedx/', import.meta.url)
const fixture = (name: string) => new URL(name, FIXTURES).pathname
const OTHER = `sha256:${'b'.repeat(64)}`
const resultsOf = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]))

describe('the runtime', () => {
  it.each([
    ['24.0.0', true],
    ['25.1.0', true],
    ['22.12.0', false],
    ['20.20.2', false],
    ['v24', false],
    ['', false],
  ])('Node %s is %s', (version, ok) => {
    if (ok) expect(() => checkRuntime(version)).not.toThrow()
    else expect(() => checkRuntime(version)).toThrow(UsageError)
  })

  it("the machine's own older Node runs the bundle to exit 2 with one line, not undici's stack", () => {
    // The machine ships Node 20 as /usr/bin/node (the project installs 24 beside it); this is that Node.
    const version = execFileSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
    expect(Number.parseInt(version, 10)).toBeLessThan(24)
    let status = 0
    let stderr = ''
    try {
      execFileSync('/usr/bin/node', [BUNDLE, '--gate', 'high', '--url', 'https://localhost:1', SAMPLE_DIGEST], {
        env: cleanEnv({ ACCESS_TOKEN: 'x'.repeat(32) }),
        encoding: 'utf8',
        stdio: 'pipe',
      })
    } catch (error) {
      status = (error as { status: number }).status
      stderr = (error as { stderr: string }).stderr
    }
    expect(status).toBe(EXIT.USAGE)
    expect(stderr).toContain(`amr-policy-gate: needs Node 24 or later; this is Node ${version}`)
    expect(stderr).not.toMatch(/\n\s+at /)
  })
})

describe('configuration errors found late still write the report and the results', () => {
  it.each([
    ['a helper-only Docker config', { auths: {}, credsStore: 'desktop' }, 'only credential helpers'],
    [
      'an auth that is not user:password',
      { auths: { 'registry.example.com': { auth: Buffer.from('no-colon').toString('base64') } } },
      'is not base64 of user:password',
    ],
  ])(
    '--scan-result auto with %s ends at once with exit 2, before any request to the cluster',
    async (_name, config, message) => {
      const resultsDir = mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
      const files = writeFiles({ 'config.json': JSON.stringify(config) })
      // KUBERNETES_SERVICE_PORT 1: nothing listens there; a run that tried would wait out its timeout.
      const run = await runGate(
        [
          '--scan-result',
          'auto',
          '--format',
          'json',
          '--results-dir',
          resultsDir,
          '--timeout',
          '30s',
          `registry.example.com/app@${SAMPLE_DIGEST}`,
        ],
        {
          env: {
            GATE: 'high',
            KUBERNETES_SERVICE_HOST: '127.0.0.1',
            KUBERNETES_SERVICE_PORT: '1',
            POLICY_REGISTRY_CONFIG: files['config.json']!,
          },
        },
      )
      expect(run.code).toBe(EXIT.USAGE)
      expect(run.stderr).toContain(message)
      expect(run.ms).toBeLessThan(10_000)
      expect(JSON.parse(run.stdout)).toMatchObject({
        verdict: 'error',
        exitCode: 2,
        error: { code: 'REGISTRY_CONFIG' },
      })
      expect(resultsOf(resultsDir)).toMatchObject({ verdict: 'error' })
    },
  )

  it('checks every registry a config names when the registry is not known yet', () => {
    expect(() =>
      checkDockerConfig(
        { auths: { 'a.example.com': { username: 'u', password: 'p' } }, credHelpers: { 'b.example.com': 'ecr-login' } },
        undefined,
        'c',
      ),
    ).not.toThrow()
    expect(() => checkDockerConfig({ credHelpers: { 'b.example.com': 'ecr-login' } }, undefined, 'c')).toThrow(
      /only credential helpers/,
    )
    expect(() => checkDockerConfig({ auths: { 'a.example.com': { identitytoken: 't' } } }, undefined, 'c')).toThrow(
      /identity token/,
    )
    expect(() => checkDockerConfig([], undefined, 'c')).toThrow(/is not a Docker config/)
  })

  it('an unreadable exemptions file writes verdict error to the results too', async () => {
    const resultsDir = mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
    const files = writeFiles({ 'body.json': JSON.stringify(sampleImageBody()), 'exemptions.yaml': 'exemptions: [\n' })
    const run = await runGate(
      [
        '--input',
        files['body.json']!,
        '--exemptions',
        files['exemptions.yaml']!,
        '--results-dir',
        resultsDir,
        SAMPLE_DIGEST,
      ],
      { env: { GATE: 'high' } },
    )
    expect(run.code).toBe(EXIT.USAGE)
    expect(resultsOf(resultsDir).verdict).toBe('error')
  })
})

describe('which image a document is the scan of', () => {
  it('says DIGEST_MISMATCH, naming both digests, for a store body or a CycloneDX about another image', async () => {
    const body = { ...sampleImageBody(), Digest: OTHER }
    const store = await runGate(['--input', '-', '--format', 'json', SAMPLE_DIGEST], {
      env: { GATE: 'high' },
      stdin: JSON.stringify(body),
    })
    expect(store.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(store.stdout).error).toMatchObject({
      code: 'DIGEST_MISMATCH',
      message: expect.stringContaining(`describes ${OTHER}, not ${SAMPLE_DIGEST}`),
    })
    const bom = {
      ...JSON.parse(readFileSync(fixture('grype-presenter-image.cdx.json'), 'utf8')),
      metadata: { component: { type: 'container', name: `registry.example.com/app@${OTHER}` } },
    }
    const cdx = await runGate(['--input', '-', '--format', 'json', SAMPLE_DIGEST], {
      env: { GATE: 'high' },
      stdin: JSON.stringify(bom),
    })
    expect(JSON.parse(cdx.stdout).error.code).toBe('DIGEST_MISMATCH')
  })

  it('says DIGEST_MISMATCH for a --baseline-input about another image than --baseline', async () => {
    const files = writeFiles({
      'body.json': JSON.stringify(sampleImageBody()),
      'running.json': JSON.stringify({ ...sampleImageBody(), Digest: OTHER }),
    })
    const run = await runGate(
      [
        '--input',
        files['body.json']!,
        '--baseline',
        `registry.example.com/app@${SAMPLE_DIGEST}`,
        '--baseline-input',
        files['running.json']!,
        '--format',
        'json',
        SAMPLE_DIGEST,
      ],
      { env: { GATE: 'high' } },
    )
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout).error).toMatchObject({
      code: 'DIGEST_MISMATCH',
      message: expect.stringContaining(`the baseline's scan describes ${OTHER}, not ${SAMPLE_DIGEST}`),
    })
  })

  it('judges a scan that names no digest (Grype 0.41 of a directory) and names it by its subject', async () => {
    const run = await runGate(['--input', fixture('grype-0.41-log4j.cdx.json'), '--format', 'json'], {
      env: { GATE: 'critical' },
    })
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({
      image: null,
      subject: './configuration/.m2/repository/org/apache/logging/log4j/log4j-core/2.13.2',
      verdict: 'fail',
    })
    expect(run.stderr).toContain('names no image digest: judged as the scan of ./configuration/')
    const text = await runGate(['--input', fixture('osv-scanner-1.4.cdx.json')], { env: { GATE: 'high' } })
    expect(text.code).toBe(EXIT.VIOLATION)
    expect(text.stdout.split('\n')[0]).toBe(
      `Scan of --input ${fixture('osv-scanner-1.4.cdx.json')} (names no image digest)`,
    )
  })
})
