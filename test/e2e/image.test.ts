// The image users deploy, in real containers: built from the Dockerfile with testcontainers, run one-shot
// with the CA and token mounted where the Task mounts them, against the simulator on loopback.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import {
  buildGateImage,
  dockerForTests,
  imageInfo,
  runContainer,
  type BuiltImage,
  type ContainerRun,
} from '../support/container.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { writeFiles } from '../support/gate.ts'
import { cleanImageBody, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody, scanReport } from '../support/documents.ts'
import { answer, repeat, TEST_TOKEN } from '../support/simulator.ts'

const hasDocker = await dockerForTests()

/** Where the Task mounts the secrets. */
const CA_PATH = '/var/cert/caCrt'
const TOKEN_PATH = '/var/run/secrets/metadata-store/accessToken'

describe.skipIf(!hasDocker)('the image', () => {
  const fixture = useStoreFixture()
  const { serve } = fixture
  let image: BuiltImage

  beforeAll(async () => {
    image = await buildGateImage()
    console.info(`container tests use ${image.tag}, built on ${image.base}`)
  }, 300_000)

  /** The Task's step: its env names, the CA at /var/cert/caCrt, the token as a mounted file. */
  function runTaskStep(
    env: Record<string, string> = {},
    ca = fixture.files.caCrt!,
    more: Pick<ContainerRun, 'files' | 'writable'> = {},
  ) {
    return runContainer(image.tag, {
      args: [SAMPLE_IMAGE],
      env: {
        GATE: 'high',
        METADATA_STORE_URL: fixture.store.hostPort,
        ACCESS_TOKEN_FILE: TOKEN_PATH,
        POLICY_POLL_INTERVAL: '200ms',
        ...env,
      },
      files: { [ca]: CA_PATH, [fixture.files.token!]: TOKEN_PATH, ...more.files },
      ...(more.writable ? { writable: more.writable } : {}),
    })
  }

  it('exits 1 after three 404s then a report with critical vulnerabilities', async () => {
    await serve([...repeat(3, answer.notFound()), answer.image(sampleImageBody())])
    const run = await runTaskStep()
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr.match(/not in the store yet \(404\)/g)).toHaveLength(3)
    expect(run.stdout).toContain('FAIL: 4 vulnerabilities (4 findings) block at gate high.')
    expect(run.stdout + run.stderr).not.toContain(TEST_TOKEN)
  })

  it("signs in the image: cosign's key opened there, a push to an unreachable registry exits 3 after the verdict", async () => {
    await serve([answer.image(sampleImageBody())])
    const key = new URL('../fixtures/attest/conforma-cosign.key', import.meta.url).pathname
    // A registry on loopback that nothing listens on: the push is refused, the verdict stands.
    const attested = (password: string) =>
      runContainer(image.tag, {
        args: [`127.0.0.1:9/tap/app@${SAMPLE_DIGEST}`],
        env: {
          GATE: 'high',
          METADATA_STORE_URL: fixture.store.hostPort,
          ACCESS_TOKEN_FILE: TOKEN_PATH,
          POLICY_ATTEST: 'true',
          POLICY_ATTEST_KEY: '/keys/cosign.key',
          COSIGN_PASSWORD: password,
          POLICY_TIMEOUT: '4s',
        },
        files: { [fixture.files.caCrt!]: CA_PATH, [fixture.files.token!]: TOKEN_PATH, [key]: '/keys/cosign.key' },
      })
    const wrong = await attested('not-the-password')
    expect(wrong.code).toBe(EXIT.USAGE)
    expect(wrong.stderr).toContain('cannot be decrypted with the password given: check COSIGN_PASSWORD')
    const unreachable = await attested('')
    expect(unreachable.code).toBe(EXIT.NO_VERDICT)
    expect(unreachable.stdout).toContain('FAIL: 4 vulnerabilities (4 findings) block at gate high.')
    expect(unreachable.stderr).toMatch(
      /not attested: the verdict stands, but its attestation was not pushed to 127\.0\.0\.1:9\/tap\/app/,
    )
  })

  it('exits 0 after three 404s then a clean report', async () => {
    await serve([...repeat(3, answer.notFound()), answer.image(cleanImageBody())])
    const run = await runTaskStep()
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stdout).toContain('PASS: nothing blocks at gate high.')
  })

  it('exits 3 on 401 with the token from ACCESS_TOKEN, as the seed Task passes it', async () => {
    await serve([answer.image(cleanImageBody())], { token: 'another-token' })
    const run = await runContainer(image.tag, {
      args: [SAMPLE_IMAGE],
      env: { GATE: 'high', METADATA_STORE_URL: fixture.store.hostPort, ACCESS_TOKEN: TEST_TOKEN },
      files: { [fixture.files.caCrt!]: CA_PATH },
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain('the store rejected the token (401 Unauthorized)')
    expect(run.stdout + run.stderr).not.toContain(TEST_TOKEN)
  })

  it('exits 3 when the mounted CA does not sign the store, naming /var/cert/caCrt', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await runTaskStep({}, fixture.files['other-ca.crt'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(`TLS with the store failed`)
    expect(run.stderr).toContain(
      `either ${CA_PATH} is not the CA for localhost (for this URL it is secret app-tls-cert in namespace ` +
        `metadata-store`,
    )
  })

  it('exits 0 for gate none without a request', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await runTaskStep({ GATE: 'none' })
    expect(run.code).toBe(EXIT.PASS)
    expect(fixture.store.requests).toHaveLength(0)
  })

  it('applies the policy options from the environment, exemptions from a mounted ConfigMap, a report to a volume', async () => {
    await serve([answer.image(sampleImageBody())])
    const config = writeFiles({
      'exemptions.yaml':
        'exemptions:\n  - id: CVE-2021-44228\n    reason: JNDI lookups disabled\n    expires: 2999-12-31\n',
    })
    const reports = writeFiles({ keep: '' })
    const reportDir = reports.keep!.replace(/\/keep$/, '')
    const run = await runTaskStep(
      {
        GATE: 'critical',
        POLICY_EXEMPTIONS: '/config/exemptions.yaml',
        POLICY_TRIAGE: 'true',
        POLICY_MODE: 'audit',
        POLICY_REPORT_FILE: '/reports/gate.sarif',
      },
      fixture.files.caCrt!,
      {
        files: { [config['exemptions.yaml']!]: '/config/exemptions.yaml' },
        writable: { [reportDir]: '/reports' },
      },
    )
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stdout).toMatch(/CVE-2021-44228 .* exempt until 2999-12-31: JNDI lookups disabled/)
    expect(run.stdout).toContain('FAIL: 1 vulnerability (1 finding) blocks at gate critical.')
    expect(run.stderr).toContain('AUDIT: the gate would have failed here (exit 1, policy violated)')
    expect(run.stderr).toContain('--triage: this store has no triage endpoint')
    const sarif = JSON.parse(readFileSync(`${reportDir}/gate.sarif`, 'utf8'))
    expect(sarif.runs[0].results.map((result: { ruleId: string }) => result.ruleId)).toEqual([
      'CVE-2021-45046',
      'CVE-2021-44228',
    ])
  })

  it('reads the freshness, score and unknown-severity options from the environment', async () => {
    const body = {
      Digest: SAMPLE_DIGEST,
      Packages: [
        {
          Name: 'busybox',
          Version: '1.36',
          Vulnerabilities: [
            { CVEID: 'CVE-2026-1', Ratings: [{ Severity: 'Low', Score: 9.8 }] },
            { CVEID: 'CVE-2026-2', Ratings: [{ Severity: 'Negligible' }] },
          ],
        },
      ],
    }
    await serve([answer.image(body)], {
      reports: { [SAMPLE_DIGEST]: [answer.image({ Results: [scanReport(new Date().toISOString())] })] },
    })
    const run = await runTaskStep({
      GATE: 'critical',
      POLICY_NEWER_THAN: '1h',
      POLICY_FAIL_ON_SCORE: '9',
      POLICY_UNKNOWN_AS: 'critical',
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain(`found a scan report of ${SAMPLE_DIGEST} generated at or after`)
    expect(run.stdout).toMatch(/LOW +9\.8 +CVE-2026-1 +busybox@1\.36 +\(by score\)/)
    expect(run.stdout).toMatch(/UNKNOWN +- +CVE-2026-2 +busybox@1\.36 +\(unknown counted per --unknown-as\)/)
  })

  it('passes docker run arguments straight to the gate', async () => {
    const help = await runContainer(image.tag, { args: ['--help'] })
    expect(help.code).toBe(EXIT.PASS)
    expect(help.stdout).toContain('Exit codes:')
    const usage = await runContainer(image.tag, { args: ['--gate', 'high', 'registry.example.com/app:latest'] })
    expect(usage.code).toBe(EXIT.USAGE)
    expect(usage.stderr).toContain('has no sha256 digest')
  })

  it('runs as uid 65532 and writes nothing, on a read-only root filesystem', async () => {
    const probe = await runContainer(image.tag, {
      entrypoint: [
        '/nodejs/bin/node',
        '-e',
        "const fs=require('fs');let " +
          "w='writable';try{fs.writeFileSync('/app/x','')}catch(e){w=e.code}console.log(process.getuid(),process.getgid(),w)",
      ],
    })
    expect(probe.stdout.trim()).toBe('65532 65532 EROFS')
    const info = await imageInfo(image.tag)
    expect(info.Config.User).toBe('65532:65532')
    expect(info.Config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/policy.mjs'])
  })

  it('stands on a base with what distroless has: CA bundle, time zones, nonroot user, sticky /tmp, no shell', async () => {
    const probe = await runContainer(image.tag, {
      entrypoint: [
        '/nodejs/bin/node',
        '-e',
        `const fs = require('fs')
         console.log(JSON.stringify({
           caBundle: fs.statSync('/etc/ssl/certs/ca-certificates.crt').size > 100000,
           nonroot: fs.readFileSync('/etc/passwd', 'utf8').includes('nonroot:x:65532:65532:'),
           tmpMode: (fs.statSync('/tmp').mode & 0o7777).toString(8),
           berlin: new Date(0).toLocaleString('en-GB', { timeZone: 'Europe/Berlin' }),
           shell: ['/bin/sh', '/bin/bash', '/usr/bin/sh'].some((path) => fs.existsSync(path)),
         }))`,
      ],
    })
    expect(JSON.parse(probe.stdout)).toEqual({
      caBundle: true,
      nonroot: true,
      tmpMode: '1777',
      berlin: '01/01/1970, 01:00:00',
      shell: false,
    })
  })

  it(
    'maps a stack frame of the bundle back to its source with NODE_OPTIONS=--enable-source-maps, and holds only ' +
      'what runs',
    async () => {
      const probe = await runContainer(image.tag, {
        env: { NODE_OPTIONS: '--enable-source-maps' },
        // An Io whose stdout throws: main reports the unexpected error with its stack, whose frames must name
        // policy.ts and gate/io.ts, not policy.mjs.
        entrypoint: [
          '/nodejs/bin/node',
          '--input-type=module',
          '-e',
          "const gate = await import('/app/policy.mjs'); let said = ''; await gate.main(['--version'], { env: {}, " +
            "stdout() { throw new Error('probe') }, stderr(text) { said += text } }); console.log(said)",
        ],
      })
      expect(probe.stdout).toMatch(/at (Module\.)?main \(\S*\/policy\.ts:\d+:\d+\)/)
      expect(probe.stdout).toMatch(/\(\S*\/gate\/io\.ts:\d+:\d+\)/)
      const listing = await runContainer(image.tag, {
        entrypoint: [
          '/nodejs/bin/node',
          '-e',
          "const fs=require('fs');console.log(fs.readdirSync('/app',{recursive:true}).sort().join(' '))",
        ],
      })
      expect(listing.stdout.trim()).toMatch(
        /^chunks (chunks\/\S+\.mjs )+node_modules (node_modules\/\S+ )+policy\.mjs policy\.mjs\.map$/,
      )
    },
  )

  it("holds what scanners read: the Debian package database, os-release, Node's release and the bundled npm packages", async () => {
    const info = await imageInfo(image.tag)
    const base = await imageInfo(image.base)
    expect(info.Config.Labels).toMatchObject({
      'org.opencontainers.image.base.name': image.base,
      'org.opencontainers.image.base.digest': base.Id,
    })
    const out = mkdtempSync(join(tmpdir(), 'image-files-'))
    const container = execFileSync('docker', ['create', image.tag], { encoding: 'utf8' }).trim()
    try {
      for (const path of ['/var/lib/dpkg/status.d', '/usr/lib/os-release', '/app/node_modules', '/usr/share/doc']) {
        execFileSync('docker', ['cp', `${container}:${path}`, out])
      }
    } finally {
      execFileSync('docker', ['rm', container])
    }
    // dpkg itself reads the database, as a status file assembled from status.d as scanners assemble it.
    const admin = join(out, 'admin')
    mkdirSync(join(admin, 'info'), { recursive: true })
    writeFileSync(join(admin, 'available'), '')
    const records = readdirSync(join(out, 'status.d')).map((name) =>
      readFileSync(join(out, 'status.d', name), 'utf8').trim(),
    )
    writeFileSync(join(admin, 'status'), `${records.join('\n\n')}\n`)
    const packages = execFileSync(
      'dpkg-query',
      [`--admindir=${admin}`, '-W', '-f', '${Package} ${Version} ${db:Status-Status}\n'],
      {
        encoding: 'utf8',
      },
    )
    for (const name of ['libc6', 'libstdc++6', 'libgcc-s1', 'ca-certificates', 'tzdata', 'netbase']) {
      expect(packages).toMatch(new RegExp(`^${name.replace(/\+/g, '\\+')} \\S+ installed$`, 'm'))
    }
    for (const name of readdirSync(join(out, 'status.d')))
      expect(readdirSync(join(out, 'doc', name)), name).toContain('copyright')
    expect(readFileSync(join(out, 'os-release'), 'utf8')).toMatch(/^ID=debian$/m)
    const bundled = Object.fromEntries(
      ['undici', 'yaml', 'ae-cvss-calculator', 'packageurl-js', '@noble/ciphers'].map((name) => [
        name,
        JSON.parse(readFileSync(join(out, 'node_modules', name, 'package.json'), 'utf8')).version,
      ]),
    )
    const installed = Object.fromEntries(
      Object.keys(bundled).map((name) => [
        name,
        JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version,
      ]),
    )
    expect(bundled).toEqual(installed)
    // The stand-in names its Node release; the real distroless base says it in its own package database.
    if (base.Config.Labels?.['dev.amr-policy-gate.node.version']) {
      const node = await runContainer(image.tag, { entrypoint: ['/nodejs/bin/node', '-p', 'process.versions.node'] })
      expect(node.stdout.trim()).toBe(info.Config.Labels?.['dev.amr-policy-gate.node.version'])
    }
  })

  it('carries OCI labels with the package version and adds at most 2.5 MiB to its base', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    const info = await imageInfo(image.tag)
    expect(info.Config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'amr-policy-gate',
      'org.opencontainers.image.version': version,
      'org.opencontainers.image.licenses': 'Apache-2.0',
    })
    expect(info.Config.Labels?.['org.opencontainers.image.description']).toBeTruthy()
    expect(info.Config.Labels?.['org.opencontainers.image.source']).toBeTruthy()
    const base = await imageInfo(image.base)
    const added = info.Size - base.Size
    console.info(`the image is ${info.Size} bytes: its base plus ${added} bytes`)
    expect(added).toBeGreaterThan(0)
    // 2.05 MiB measured: undici, yaml and the CVSS calculator (0.2 MB, loaded only for CycloneDX) with the bundle and
    // its map.
    expect(added).toBeLessThanOrEqual(2.5 * 1024 * 1024)
  })
})
