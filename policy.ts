/**
 * amr-policy-gate: a vulnerability policy gate for Tanzu Application Platform supply chains.
 *
 * One run judges one image's scan and exits 0 (pass), 1 (a finding blocks at the gate), 2 (bad usage or
 * configuration, found before any request) or 3 (no verdict: whatever the gate cannot account for; it never
 * passes by accident). The scan comes from one of four sources: the Metadata Store (`GET /api/v1/images/{digest}`,
 * waited for until the deadline), a saved file (`--input`, a store body or a scanner's CycloneDX), a scan result
 * in a registry (`--scan-result REF`, an imgpkg bundle) or the image's ImageVulnerabilityScan (`--scan-result
 * auto`). It replaces the curl + jq script of the TAP documentation; see README.md.
 *
 * This file is the story of a run (`main`) and the entry; each step lives in gate/, imported one way, lower
 * modules never importing higher ones:
 *   vocabulary    exit codes, the options table, types, errors
 *   json, safe-text   untrusted data: shapes, parsing, escaping, redaction
 *   input         parsing flags, images and the store's answers
 *   options       the configuration: flags, then env, then defaults
 *   cyclonedx     findings from a scanner's CycloneDX
 *   scan-policy   Scan 1.0 ScanPolicies as exemptions and a gate
 *   evaluate      the verdict: gate, exemptions, triage, KEV, baseline
 *   render        text, JSON, SARIF, JUnit and the Tekton results
 *   io, http      the injected I/O and the one HTTP client
 *   wait          the one retry loop, and waiting for the store
 *   registry      scan results in an OCI registry
 *   kubernetes    following an ImageVulnerabilityScan
 *   files         the token, CA, exemptions and saved documents
 *   vex           VEX: --vex documents read and matched, --print-vex written
 *   attest        the verdict signed (in-toto, SLSA VSA, DSSE) and pushed beside the image
 *   body-cost     what a body costs to evaluate, checked before it is parsed
 *   run           the steps main names: prepare, obtain, judge, emit, fail
 */
import { realpathSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { ScanFiles } from './gate/cyclonedx.ts'
import { availableMemory, createHttpClient } from './gate/http.ts'
import { parseArgs } from './gate/input.ts'
import { outputFor } from './gate/io.ts'
import type { Io, Run, RunContext } from './gate/io.ts'
import { optionReader, resolveConfig } from './gate/options.ts'
import { renderHelp } from './gate/render.ts'
import {
  attestVerdict,
  checkRuntime,
  cvssFor,
  describeScanPolicyImport,
  emit,
  endWithoutVerdict,
  failEarly,
  judgeDocument,
  loadScanPolicy,
  obtainDocument,
  prepare,
  printVex,
  realFiles,
} from './gate/run.ts'
import { EXIT, InterruptedError, NAME, UsageError, VERSION } from './gate/vocabulary.ts'
import type { Config } from './gate/vocabulary.ts'
import { timerMs } from './gate/wait.ts'

/** Runs the gate and returns its exit code: read the configuration, prepare, obtain the document, judge, emit. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const output = outputFor(io)
  let config: Config
  try {
    checkRuntime(process.versions.node)
    const args = parseArgs(argv)
    if (args.kind !== 'run') {
      output.stdout(args.kind === 'help' ? renderHelp(io.columns) : `${NAME} ${VERSION}\n`)
      return EXIT.PASS
    }
    const options = optionReader(args.values, io.env)
    const scanPolicy = await loadScanPolicy(options, io)
    if (args.values.has('--print-exemptions')) {
      if (!scanPolicy)
        throw new UsageError('SCAN_POLICY', '--print-exemptions converts a ScanPolicy: give it with --scan-policy FILE')
      const { renderScanPolicyExemptions } = await import('./gate/scan-policy.ts')
      output.stdout(renderScanPolicyExemptions(scanPolicy, io.now()))
      return EXIT.PASS
    }
    config = resolveConfig(args.values, args.positionals, { env: io.env, ...io.files }, io.now(), scanPolicy, options)
    if (scanPolicy) await describeScanPolicyImport(scanPolicy, options, output)
  } catch (error) {
    return failEarly(error, argv, io, output)
  }
  const run: Run = {
    started: io.now(),
    deadline: AbortSignal.any([io.signal, AbortSignal.timeout(timerMs(config.timeoutMs))]),
    phase: 'reading the configuration',
    clients: [],
    ...(config.image ? { image: config.image } : {}),
  }
  const ctx: RunContext = { config, run, output, io }
  try {
    if (!config.source) {
      output.say(`gate none: no policy enforced for ${config.image?.reference ?? 'the image'}; the store was not asked`)
      if (config.attest) output.say('--attest: gate none reaches no verdict, so none is signed or pushed')
      return emit(ctx, { skipped: true })
    }
    const prepared = await prepare(ctx)
    const obtained = await obtainDocument(ctx, prepared)
    const setAside = obtained.document instanceof ScanFiles ? obtained.document.setAside : []
    const [evaluation, summary] = judgeDocument(
      config,
      run.image ?? run.subject!,
      obtained,
      setAside,
      prepared,
      io,
      await cvssFor(obtained.document),
    )
    const vexDocument = config.printVex ? await printVex(evaluation, run.image, obtained.document, io.now()) : undefined
    const notAttested = config.attest
      ? await attestVerdict(ctx, prepared, evaluation, obtained.inputs ?? [])
      : undefined
    return emit(ctx, { evaluation, setAside, ...(notAttested ? { error: notAttested } : {}) }, summary, vexDocument)
  } catch (caught) {
    return endWithoutVerdict(caught, ctx)
  } finally {
    await Promise.all(run.clients.map((client) => client.close().catch(() => undefined)))
  }
}

// ---------------------------------------------------------------------------------------------
// Entry: runs only when this file is the program, so tests can import the functions above.

/**
 * Whether the module at `moduleUrl` is the program node was started with (`script`, as in process.argv[1], possibly
 * through a link).
 */
export function isMain(
  moduleUrl: string,
  script: string | undefined,
  resolve: (path: string) => string = realpathSync,
): boolean {
  if (!script) return false
  try {
    return moduleUrl === pathToFileURL(resolve(script)).href
  } catch {
    return false
  }
}

if (isMain(import.meta.url, process.argv[1])) {
  const controller = new AbortController()
  const listeners = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const listener = () => {
      const interrupted = new InterruptedError(signal)
      controller.abort(interrupted)
      // Whatever is still pending (a TLS handshake, a slow close), stop within a second.
      setTimeout(() => process.exit(interrupted.exitCode), 1_000).unref()
    }
    process.once(signal, listener)
    return [signal, listener] as const
  })
  // A reader that closes early (`| head`) is not an error of the gate: the exit code stays the verdict's.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => void (error.code === 'EPIPE' || process.exit(EXIT.NO_VERDICT)))
  const io: Io = {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdin: process.stdin,
    isTTY: Boolean(process.stdout.isTTY),
    ...(process.stdout.isTTY && process.stdout.columns ? { columns: process.stdout.columns } : {}),
    signal: controller.signal,
    now: Date.now,
    // Without a listener, SIGINT and SIGTERM take their default action at once (exit 130/143 as the
    // shell and Kubernetes report it), even in the middle of a JSON.parse that no listener could interrupt.
    blocking: (work) => {
      for (const [signal, listener] of listeners) process.removeListener(signal, listener)
      try {
        return work()
      } finally {
        for (const [signal, listener] of listeners) if (!controller.signal.aborted) process.once(signal, listener)
      }
    },
    availableMemory,
    sleep: (ms, signal) => sleep(ms, undefined, { signal }),
    random: Math.random,
    files: realFiles,
    connect: createHttpClient,
  }
  process.exitCode = await main(process.argv.slice(2), io)
  // Work that cannot be cancelled (a FIFO that is never written, a socket a proxy holds open) must not keep the process
  // past its verdict.
  setTimeout(() => process.exit(), 1_000).unref()
}
