import {
  accessSync,
  constants as fsConstants,
  existsSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import type { KeyObject } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import {
  ScanFiles,
  bomsOf,
  digestNamedBy,
  digestOfBom,
  loadCvssScorer,
  needsCvss,
  subjectComponent,
  subjectOf,
} from './cyclonedx.ts'
import type { CvssScorer, SetAside } from './cyclonedx.ts'
import { KEV_MAX_AGE_DAYS, baselineFrom, digestMismatch, evaluate, kevCatalogFrom } from './evaluate.ts'
import type { KevCatalog } from './evaluate.ts'
import {
  configFileLimits,
  loadExemptions,
  loadStoreSettings,
  parseYamlConfig,
  readNamedFile,
  readSavedDocument,
  sha256Of,
} from './files.ts'
import { bearerFetch, connect } from './http.ts'
import { parseOciRef, formatDuration, imageEndpoint } from './input.ts'
import type { FileSystem, Io, Output, Run, RunContext } from './io.ts'
import { parseJsonConfig, textOf } from './json.ts'
import type { ScanList } from './kubernetes.ts'
import { checkCa } from './options.ts'
import type { OptionReader } from './options.ts'
import type { InputDocument } from './attest.ts'
import type { RegistryAccess } from './registry.ts'
import type { VexPolicy } from './vex.ts'
import { buildJsonReport, decideExit, exitCodeFor, plural, renderReport, renderText, tektonResults } from './render.ts'
import type { JsonReport, Outcome } from './render.ts'
import { cut, escapeControls, redact, redactReport, toJson } from './safe-text.ts'
import {
  EXIT,
  InterruptedError,
  MIN_TOKEN_LENGTH,
  NoVerdictError,
  REQUEST_TIMEOUT_MS,
  UsageError,
} from './vocabulary.ts'
import type {
  AttestSettings,
  Config,
  Environment,
  Evaluation,
  Exemption,
  ImageRef,
  OciRef,
  Policy,
  RegistryFiles,
  ScanPolicyImport,
  Severity,
  StoreSettings,
  TriageDecision,
} from './vocabulary.ts'
import { fetchTriage, pollStore, ready, waitForFreshReport, waitForImageReport } from './wait.ts'
import type { WaitDeps } from './wait.ts'

/**
 * Writes each file to a temporary name in the same folder, then renames them all, in order: a reader sees
 * a whole file or none, never half of one. When any fails, those already renamed are removed again, so
 * that a set of files (the Tekton results) is all there or not at all.
 */
export function writeFilesAtomically(files: ReadonlyArray<readonly [path: string, content: string]>): void {
  const temporary = files.map(([path]) => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`))
  const renamed: string[] = []
  try {
    files.forEach(([, content], index) => writeFileSync(temporary[index]!, content, { flag: 'w', mode: 0o644 }))
    for (const [index, [path]] of files.entries()) {
      renameSync(temporary[index]!, path)
      renamed.push(path)
    }
  } catch (error) {
    for (const path of renamed) rmSync(path, { force: true })
    throw error
  } finally {
    for (const path of temporary) rmSync(path, { force: true })
  }
}

export const realFiles: FileSystem = {
  read: readNamedFile,
  writeAll: writeFilesAtomically,
  remove: (path) => rmSync(path, { force: true }),
  list: (path) => {
    try {
      if (!statSync(path).isDirectory()) return undefined
      const isFile = (name: string) => {
        try {
          return statSync(join(path, name)).isFile()
        } catch {
          return false
        }
      }
      return readdirSync(path)
        .filter((name) => !name.startsWith('.') && isFile(name))
        .sort()
    } catch {
      return undefined
    }
  },
  fileExists: (path: string) => existsSync(path),
  isDirectory: (path: string) => {
    try {
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  },
  isWritableDirectory: (path: string) => {
    try {
      accessSync(path, fsConstants.W_OK)
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  },
}

/**
 * The files a run needs, read and checked before any request: the store's or the registry's settings (neither for
 * --input) and the exemptions.
 */
export interface Prepared {
  readonly store?: StoreSettings
  readonly registry?: RegistryAccess
  readonly exemptions: readonly Exemption[]
  readonly kev?: KevCatalog
  readonly vex?: VexPolicy
  /** --attest: the signing key, read and decrypted, and the registry to push to. */
  readonly attest?: { readonly key: KeyObject; readonly access: RegistryAccess }
}

/** The Node the gate is built for; an older one fails inside undici, far from the cause. */
export const NODE_MAJOR = 24

/** Node `version` (process.versions.node) is one the gate runs on, or a usage error that says which it needs. */
export function checkRuntime(version: string): void {
  const major = Number.parseInt(version, 10)
  if (!(major >= NODE_MAJOR))
    throw new UsageError(
      'RUNTIME',
      `needs Node ${NODE_MAJOR} or later; this is Node ${cut(escapeControls(version), 20)}: run the published image, ` +
        `or install Node ${NODE_MAJOR}`,
    )
}

/**
 * The CVSS calculator, loaded only for a CycloneDX document with a rating that states neither severity nor score, only
 * a vector.
 */
export const cvssFor = (document: unknown) => (needsCvss(document) ? loadCvssScorer() : Promise.resolve(undefined))

/**
 * --scan-policy FILE (or POLICY_SCAN_POLICY): the ScanPolicy read, recognised and translated, before the rest of the
 * configuration it feeds.
 */
export async function loadScanPolicy(options: OptionReader, io: Io): Promise<ScanPolicyImport | undefined> {
  const input = options.get('--scan-policy')
  if (!input) return undefined
  // Read before --timeout is known: a config file gets the time a request gets.
  const signal = AbortSignal.any([io.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
  const text = await io.files.read(input.value, `the ScanPolicy named by ${input.origin}`, {
    signal,
    limits: configFileLimits('the ScanPolicy'),
  })
  const [contents, { loadCodecs }, { scanPolicyFrom }] = await Promise.all([
    parseYamlConfig(text, input.value, 'SCAN_POLICY', 'as a ScanPolicy', io),
    import('./registry.ts'),
    import('./scan-policy.ts'),
  ])
  const codecs = await loadCodecs()
  return io.blocking(() =>
    scanPolicyFrom(contents, input.value, (rule) => codecs.sha256(Buffer.from(rule)).slice('sha256:'.length)),
  )
}

/** What the ScanPolicy set, what flags overrode, and where its semantics differ: one line each. */
export async function describeScanPolicyImport(
  scanPolicy: ScanPolicyImport,
  { get }: OptionReader,
  output: Output,
): Promise<void> {
  const { templateTitle } = await import('./scan-policy.ts')
  const gate = get('--gate')?.origin
  const unknownAs = get('--unknown-as')?.origin
  const overridden = (origin: string | undefined) => (origin ? ` (overridden by ${origin})` : '')
  const unknown = scanPolicy.unknownAs === 'ignore' ? 'ignored' : `counts as ${scanPolicy.unknownAs}`
  const exemptions = plural(scanPolicy.exemptions.length, 'ignored CVE')
  output.say(
    `--scan-policy: ScanPolicy ${scanPolicy.name} (TAP's ${templateTitle(scanPolicy)}): gate ${scanPolicy.gate}` +
      `${overridden(gate)}, unknown severity ${unknown}${overridden(unknownAs)}, ${exemptions} as exemptions`,
  )
  for (const note of scanPolicy.notes) output.say(`--scan-policy: ${note}`)
  const passed =
    scanPolicy.template === 'grype'
      ? 'passed a finding when any one of its ratings was outside notAllowedSeverities'
      : 'passed a finding only when none of its ratings was in notAllowedSeverities'
  output.say(
    `--scan-policy: Scan 1.0 ${passed}; ` +
      'the gate takes the highest rating, so findings that passed before may block now (listed as such)',
  )
}

/** Reads the token, CA and exemptions files, bounded by the deadline; the token joins the secrets at once. */
export async function prepare(ctx: RunContext): Promise<Prepared> {
  const { config, run, output, io } = ctx
  const store =
    config.source && 'store' in config.source
      ? await loadStoreSettings(config.source.store, config.timeoutMs, run.deadline, io.files)
      : undefined
  if (store) output.secrets.push(store.token)
  const registry =
    config.source && 'scanResult' in config.source
      ? await loadRegistryAccess(config.source.scanResult, config.timeoutMs, run.deadline, io)
      : undefined
  run.phase = 'reading --exemptions'
  const exemptions = [
    ...(config.exemptionsFile ? await loadExemptions(config.exemptionsFile, output.secrets, run.deadline, io) : []),
    ...(config.scanPolicy?.exemptions ?? []),
  ]
  run.phase = 'reading --kev'
  const kev = config.kevFile ? await loadKevCatalog(config.kevFile, run.deadline, output, io) : undefined
  run.phase = 'reading --vex'
  // The VEX reader and the purl library are loaded only by the runs that read VEX (build.mjs).
  const vex = config.vexFiles
    ? await (await import('./vex.ts')).prepareVex(config.vexFiles, io.files, run.deadline)
    : undefined
  run.phase = 'reading --attest-key'
  const attest = config.attest ? await prepareAttest(config.attest, ctx) : undefined
  return {
    ...(store ? { store } : {}),
    ...(registry ? { registry } : {}),
    exemptions,
    ...(kev ? { kev } : {}),
    ...(vex ? { vex } : {}),
    ...(attest ? { attest } : {}),
  }
}

/**
 * --attest's key, read and decrypted (COSIGN_PASSWORD joins the secrets), and its registry's credentials: before any
 * request, so that a key that cannot be used is exit 2 and nothing was asked.
 */
export async function prepareAttest(
  settings: AttestSettings,
  { run, output, io, config }: RunContext,
): Promise<NonNullable<Prepared['attest']>> {
  const { loadCiphers, signingKeyFrom } = await import('./attest.ts')
  await loadCiphers()
  const { file, origin } = settings.key
  const pem = await io.files.read(file, `the signing key named by ${origin}`, {
    signal: run.deadline,
    limits: configFileLimits('the signing key'),
  })
  const password = io.env.COSIGN_PASSWORD
  if (password && password.length >= MIN_TOKEN_LENGTH) output.secrets.push(password)
  const key = io.blocking(() => signingKeyFrom(pem, password, `${origin} ${file}`))
  const access = await loadRegistryAccess(settings, config.timeoutMs, run.deadline, io)
  return { key, access }
}

export const MAX_KEV_BYTES = 16 * 1024 * 1024

/** CISA's catalog, checked; one older than KEV_MAX_AGE_DAYS is used, and said to be old. */
export async function loadKevCatalog(path: string, signal: AbortSignal, output: Output, io: Io): Promise<KevCatalog> {
  const text = await io.files.read(path, '--kev', {
    signal,
    limits: {
      maxBytes: MAX_KEV_BYTES,
      tooLarge: () =>
        new UsageError(
          'KEV',
          `--kev ${path} is larger than ${MAX_KEV_BYTES / 2 ** 20} MiB: that is not CISA's catalog`,
        ),
    },
  })
  const catalog = io.blocking(() =>
    kevCatalogFrom(
      parseJsonConfig(text, 'KEV', `--kev ${path} is not JSON: give CISA's known_exploited_vulnerabilities.json`),
      `--kev ${path}`,
    ),
  )
  const ageDays = Math.floor((io.now() - catalog.released) / 86_400_000)
  if (ageDays > KEV_MAX_AGE_DAYS) {
    output.say(
      `warning: the KEV catalog ${path} (version ${catalog.version}) was released ${ageDays} days ago: refresh it, ` +
        `CISA adds entries every week`,
    )
  }
  return catalog
}

/** The Docker config and the registry's CA, read and checked. */
export async function loadRegistryAccess(
  source: RegistryFiles & { readonly ref?: OciRef | 'auto' },
  timeoutMs: number,
  signal: AbortSignal,
  io: Io,
): Promise<RegistryAccess> {
  let dockerConfig: RegistryAccess['dockerConfig']
  if (source.registryConfig) {
    const { file, origin } = source.registryConfig
    const text = await io.files.read(file, `the Docker config named by ${origin}`, {
      signal,
      limits: configFileLimits('the Docker config'),
    })
    const notJson =
      `${file} (${origin}) is not JSON: give a Docker config.json or the .dockerconfigjson of secret ` +
      `registry-credentials`
    dockerConfig = { document: parseJsonConfig(text, 'REGISTRY_CONFIG', notJson), origin: `${origin} (${file})` }
    const { checkDockerConfig } = await import('./registry.ts')
    checkDockerConfig(
      dockerConfig.document,
      source.ref === 'auto' || source.ref === undefined ? undefined : source.ref.registry,
      dockerConfig.origin,
    )
  }
  const ca = source.registryCa
    ? {
        pem: checkCa(
          await io.files.read(source.registryCa.file, 'the registry CA file', {
            signal,
            limits: configFileLimits('the CA file'),
          }),
          source.registryCa.file,
          "the registry's CA",
        ),
        origin: source.registryCa.file,
      }
    : undefined
  return {
    ...(dockerConfig ? { dockerConfig } : {}),
    ...(ca ? { ca } : {}),
    proxied: source.proxied,
    timeoutMs,
    pollIntervalMs: source.pollIntervalMs,
  }
}

/**
 * The Image document from --input (a store body or a scanner's CycloneDX), or from the store once it holds it
 * (and, with --triage, its triage); run.image is then the image judged, and expectedDigest the digest the
 * document must carry (none when it names none, or when it named the image itself).
 */
export async function obtainDocument(ctx: RunContext, prepared: Prepared): Promise<Obtained> {
  const { config, run, output, io } = ctx
  const deps = waitDepsOf(ctx)
  if (config.source && 'input' in config.source) {
    const { input } = config.source
    const inputs: InputDocument[] = []
    const document = await readSavedDocument('--input', input, ctx, config.attest ? inputs : undefined)
    const settled = settleImage(document, `--input ${input}`, run, output)
    return { ...settled, inputs, baseline: await obtainBaseline(ctx, undefined) }
  }
  if (config.source && 'scanResult' in config.source) {
    const source = config.source.scanResult
    const registry = prepared.registry!
    // The registry and Kubernetes clients are loaded only by the runs that read a scan result (build.mjs).
    const [{ readScanResult }, { followScan, openScanList }] = await Promise.all([
      import('./registry.ts'),
      import('./kubernetes.ts'),
    ])
    const client = await connect(run, io, registry)
    const read = async (ref: OciRef) => {
      run.phase = `reading ${ref.reference}`
      output.say(`reading the scan results ${ref.reference} (waiting up to ${formatDuration(config.timeoutMs)})`)
      const scans = await readScanResult(ref, registry, client, deps, config.maxBodyBytes, output.secrets)
      output.say(`evaluating ${scans.files.map((file) => file.name).join(', ')} from ${ref.reference}`)
      return scans
    }
    let scans: ScanList | undefined
    let ref: OciRef
    if (source.ref === 'auto') {
      run.phase = 'reading the service account'
      scans = await openScanList(config.scanSelector, { ...source, timeoutMs: config.timeoutMs }, ctx)
      ref = await followScan(run.image!, scans, ctx, deps)
    } else ref = source.ref
    const scanned = await read(ref)
    const settled = {
      ...settleImage(scanned, ref.reference, run, output),
      inputs: scanned.source ? [scanned.source] : [],
    }
    // The baseline's results: those of its newest succeeded scan, when the cluster still lists one.
    const baselineScan = async (baseline: ImageRef) => {
      const look = await scans!.check(run.deadline, baseline.digest)
      if (look.kind === 'fail') throw look.error
      return look.kind === 'state' && look.state.kind === 'succeeded'
        ? read(parseOciRef(look.state.result, `status.scanResult of ${look.state.name}`))
        : undefined
    }
    return { ...settled, baseline: await obtainBaseline(ctx, scans ? baselineScan : undefined) }
  }
  const store = prepared.store!
  const image = run.image!
  run.phase = 'waiting for the store'
  output.say(
    `checking ${image.reference} against gate ${config.gate} at ${store.baseUrl.origin}${store.baseUrl.pathname} ` +
      `(waiting up to ${formatDuration(store.timeoutMs)})`,
  )
  const fetch = bearerFetch(await connect(run, io, store), store, config.maxBodyBytes)
  // --attest names the store's answer it judged, by its sha256.
  const imageUrl = imageEndpoint(store.baseUrl, image.digest).href
  const inputs: InputDocument[] = []
  const recording: WaitDeps['fetch'] = async (url, signal) => {
    const answer = await fetch(url, signal)
    if (answer.status === 200 && url.href === imageUrl)
      inputs.splice(0, 1, { uri: url.href, sha256: await sha256Of(answer.body) })
    return answer
  }
  const storeDeps: WaitDeps = { ...deps, fetch: config.attest ? recording : fetch }
  if (config.newerThan !== undefined) await waitForFreshReport(store, image.digest, config.newerThan, storeDeps)
  const { scanExplainer } = await import('./kubernetes.ts')
  const explain = await scanExplainer(image, config.scanSelector, store, ctx)
  const document = await waitForImageReport(store, image.digest, storeDeps, explain)
  // The running image was scanned long ago: its report is there now or not at all.
  const baselineInStore = (baseline: ImageRef) =>
    pollStore(
      {
        url: imageEndpoint(store.baseUrl, baseline.digest),
        what: `the baseline ${baseline.digest} in the store`,
        onNotFound: 'absent',
        accept: ready,
      },
      store,
      storeDeps,
    )
  const baseline = await obtainBaseline(ctx, baselineInStore)
  if (!config.triage) return { document, triage: [], expectedDigest: image.digest, baseline, inputs }
  const triage = await fetchTriage(store, image.digest, storeDeps)
  if (!triage)
    output.say(
      '--triage: this store has no triage endpoint (404 on /api/v1/triage, TAP 1.6 or later has it): no triage applied',
    )
  return { document, triage: triage ?? [], expectedDigest: image.digest, baseline, inputs }
}

/**
 * What judging needs from the source: the document, the store's triage, the digest it must name, and the baseline's
 * findings.
 */
export interface Obtained {
  readonly document: unknown
  readonly triage: readonly TriageDecision[]
  readonly expectedDigest?: string
  /** --attest: the documents judged, where they came from and their sha256. */
  readonly inputs?: readonly InputDocument[]
  /** Undefined without --baseline; null when the baseline has no scan data (then everything is judged). */
  readonly baseline?: ReadonlyMap<string, Severity> | null | undefined
}

/**
 * The baseline's findings: from --baseline-input, or from the same source as the image (`fromSource`).
 * A baseline without scan data is said and judged strictly (null): everything counts, nothing is dropped.
 */
export async function obtainBaseline(
  ctx: RunContext,
  fromSource: ((image: ImageRef) => Promise<unknown>) | undefined,
): Promise<ReadonlyMap<string, Severity> | null | undefined> {
  const { config, run, output, io } = ctx
  if (!config.baseline) return undefined
  const { image, input } = config.baseline
  let document: unknown
  if (input) {
    document = await readSavedDocument('--baseline-input', input, ctx)
  } else if (image && fromSource) {
    run.phase = `reading the baseline ${image.reference}`
    document = await fromSource(image)
  }
  if (document === undefined) {
    output.say(
      `--baseline ${image?.reference ?? ''}: no scan data for it here, so every finding is judged as new (strict)`,
    )
    return null
  }
  const named = image ? digestNamedBy(document) : undefined
  if (image && named && named !== image.digest) throw digestMismatch("the baseline's scan", named, image.digest)
  const cvss = await cvssFor(document)
  const baseline = io.blocking(() => baselineFrom(document, cvss))
  output.say(
    `--baseline ${image?.reference ?? `--baseline-input ${input}`}: ${plural(baseline.size, 'finding')} in the ` +
      `running image; only new or worse findings block`,
  )
  return baseline
}

/**
 * A document that is not the store's answer for the digest (--input, a scan result): it may name the image
 * it describes. Without an image given, that names it; with one, a digest it names must agree.
 */
export function settleImage(document: unknown, origin: string, run: Run, output: Output): Obtained {
  const named = digestNamedBy(document)
  if (!run.image) {
    if (!named) {
      // A filesystem or repository scan, a VEX, an SBOM without a digest: judged, and named by what it says it scanned.
      run.subject = (bomsOf(document) ?? []).map((file) => subjectOf(file.bom)).find(Boolean) ?? origin
      output.say(
        `${origin} names no image digest: judged as the scan of ${run.subject} (give the image to tie the verdict to ` +
          `it)`,
      )
      return { document, triage: [] }
    }
    run.image = { reference: named, digest: named }
    // Every file of a scan result must describe the same image.
    return { document, triage: [], ...(document instanceof ScanFiles ? { expectedDigest: named } : {}) }
  }
  if (bomsOf(document) && !named) {
    output.say(`${origin} names no image digest: it is taken to be the scan of ${run.image.reference}`)
    return { document, triage: [] }
  }
  return { document, triage: [], expectedDigest: run.image.digest }
}

/** The verdict on the document, and the summary a person reads; CPU work, so a signal still ends it at once. */
export function judgeDocument(
  config: Config,
  image: ImageRef | string,
  { document, triage, expectedDigest, baseline }: Obtained,
  setAside: readonly SetAside[],
  prepared: Prepared,
  io: Io,
  cvss: CvssScorer | undefined,
): readonly [Evaluation, string] {
  const vex = prepared.vex
  const policy: Policy = {
    ...(vex
      ? {
          vex: vex.judgeFor(vex.identify(typeof image === 'string' ? undefined : image, ...scanSubjects(document))),
          vexStatements: vex.statements,
          ...(config.vexAcceptsKev ? { vexAcceptsKev: true } : {}),
        }
      : {}),
    gate: config.gate,
    unknownAs: config.unknownAs,
    onlyFixed: config.onlyFixed,
    exemptions: prepared.exemptions,
    triage,
    documentTriage: config.triage,
    now: io.now(),
    warnAt: config.warnAt,
    ...(config.failOnScore === undefined ? {} : { failOnScore: config.failOnScore }),
    ...(prepared.kev ? { kev: prepared.kev.entries } : {}),
    ...(baseline ? { baseline } : {}),
    ...(config.scanPolicy ? { scan1: config.scanPolicy } : {}),
  }
  const color = io.isTTY && !io.env.NO_COLOR && io.env.TERM !== 'dumb'
  return io.blocking(() => {
    const evaluation = evaluate(document, policy, expectedDigest, cvss)
    const triageSource = !config.triage ? false : config.source && 'store' in config.source ? 'store' : 'document'
    return [evaluation, renderText(evaluation, image, { color, policy, triage: triageSource, setAside })] as const
  })
}

/** What every wait of the run needs of its Io: the clock, sleep, jitter, progress lines, the signal, blocking work. */
export function waitDepsOf({ run, output, io }: RunContext): Omit<WaitDeps, 'fetch'> {
  return {
    now: io.now,
    sleep: io.sleep,
    random: io.random,
    progress: output.say,
    signal: io.signal,
    started: run.started,
    blocking: io.blocking,
  }
}

/** The effective policy an attestation names by digest: everything that decided, as data (docs/admission.md). */
export function effectivePolicy(config: Config, prepared: Prepared): Record<string, unknown> {
  return {
    gate: config.gate,
    mode: config.mode,
    unknownAs: config.unknownAs,
    failOnScore: config.failOnScore ?? null,
    onlyFixed: config.onlyFixed,
    warnAt: config.warnAt,
    triage: config.triage,
    exemptions: prepared.exemptions.map((exemption) => ({
      id: exemption.id,
      package: exemption.package ?? null,
      reason: exemption.reason,
      expires: exemption.expires,
      kevAccepted: Boolean(exemption.acceptsKev),
    })),
    kev: prepared.kev ? { catalogVersion: prepared.kev.version, entries: prepared.kev.entries.size } : null,
    vex: prepared.vex ? { documents: prepared.vex.documents, acceptsKev: Boolean(config.vexAcceptsKev) } : null,
    scanPolicy: config.scanPolicy?.name ?? null,
    baseline: config.baseline?.image?.reference ?? config.baseline?.input ?? null,
  }
}

/**
 * --attest, after the verdict: the statement signed and pushed beside the image. A push that fails leaves the verdict
 * standing and returns the error (ATTESTATION_NOT_PUSHED, exit 3 in enforce mode): a pipeline never believes it
 * attested when it did not.
 */
export async function attestVerdict(
  ctx: RunContext,
  prepared: Prepared,
  evaluation: Evaluation,
  inputs: readonly InputDocument[],
): Promise<{ readonly code: string; readonly message: string } | undefined> {
  const { config, run, output, io } = ctx
  const settings = config.attest!
  const { key, access } = prepared.attest!
  const image = run.image!
  const [{ pushAttestation, pushReferrer, signEnvelope, verdictStatement }, { registryTransport }] = await Promise.all([
    import('./attest.ts'),
    import('./registry.ts'),
  ])
  const statement = verdictStatement({
    image,
    repository: `${settings.target.registry}/${settings.target.repository}`,
    evaluation,
    gate: config.gate,
    mode: config.mode,
    policy: effectivePolicy(config, prepared),
    inputs,
    now: io.now(),
  })
  const envelope = Buffer.from(JSON.stringify(signEnvelope(statement, key)))
  run.phase = `pushing the attestation to ${settings.target.registry}`
  try {
    const client = await connect(run, io, access)
    const deps = waitDepsOf(ctx)
    const { send } = registryTransport(settings.target, access, client, deps, output.secrets, 'push')
    const target = { send, registry: settings.target.registry, repository: settings.target.repository }
    const pushed = await pushAttestation(target, image.digest, envelope)
    const referrer = await pushReferrer(target, image.digest, envelope)
    output.say(
      `attested: ${evaluation.passed ? 'PASSED' : 'FAILED'} for ${image.digest}, pushed as ${pushed.reference} ` +
        `(${pushed.digest})${referrer ? ` and as the referrer ${referrer}` : ''}`,
    )
    return undefined
  } catch (error) {
    if (io.signal.aborted) throw error
    const why = error instanceof Error ? error.message : String(error)
    const message =
      `the verdict stands, but its attestation was not pushed to ${settings.target.registry}/` +
      `${settings.target.repository}: ${why}`
    output.say(`not attested: ${message}`)
    return { code: 'ATTESTATION_NOT_PUSHED', message }
  }
}

/** What the scan's files say they are of: the digests they name, and their subjects' purls (for VEX's products). */
export function scanSubjects(document: unknown): [digests: string[], purls: string[]] {
  const boms = bomsOf(document) ?? []
  return [
    boms.map((file) => digestOfBom(file.bom)).filter((digest) => digest !== undefined),
    boms.map((file) => textOf(subjectComponent(file.bom).purl)).filter(Boolean),
  ]
}

/** --print-vex: the run's decisions as OpenVEX about the image judged; undefined when nothing was decided. */
export async function printVex(
  evaluation: Evaluation,
  image: ImageRef | undefined,
  document: unknown,
  now: number,
): Promise<string | undefined> {
  const { renderOpenVex } = await import('./vex.ts')
  return renderOpenVex(evaluation, image, ...scanSubjects(document), now)
}

/**
 * Every verdict, and every failure to reach one, ends here. The files are written first, so that Tekton
 * never reads a stale or half-written result; when the results cannot be written the verdict is still
 * printed, but the exit code says no verdict, since the Task could not record it.
 */
export function emit(ctx: RunContext, outcome: Outcome, summary?: string, vexDocument?: string): number {
  const {
    config,
    run,
    output,
    io: { files },
  } = ctx
  const { gate, mode, resultsDir, report } = config
  const about = { image: run.image ?? null, ...(run.subject === undefined ? {} : { subject: run.subject }), gate, mode }
  let decision = decideExit(outcome, mode)
  // Built only when something reads it: a text run of 50,000 findings need not copy 5,000 of them.
  let built: JsonReport | undefined
  const jsonReport = () => (built ??= redactReport(buildJsonReport(about, outcome, decision), output.secrets))
  if (resultsDir) {
    try {
      writeResults(files, resultsDir, jsonReport())
    } catch (error) {
      const message =
        `the verdict could not be recorded: cannot write the results to ${resultsDir} ` +
        `(${(error as NodeJS.ErrnoException).code ?? 'error'})`
      try {
        files.remove(join(resultsDir, 'verdict')) // no stale verdict of an earlier run
      } catch {}
      output.say(`no verdict: ${message}`)
      const unrecorded = { ...outcome, error: { code: 'RESULTS_NOT_WRITTEN', message } }
      decision = decideExit(unrecorded, mode)
      built = redactReport(buildJsonReport(about, unrecorded, decision), output.secrets)
    }
  }
  if (report) {
    try {
      files.writeAll([[report.path, renderReport(jsonReport(), report.format)]])
    } catch (error) {
      output.say(
        `warning: cannot write the report ${report.path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); the ` +
          `verdict stands`,
      )
    }
  }
  if (config.printVex) {
    // stdout carries the VEX document alone, so that it can be piped; the person reads the summary on stderr.
    if (vexDocument) output.json(redact(vexDocument, output.secrets))
    else if (outcome.evaluation) output.say('--print-vex: no exemption, triage or VEX decided anything here: no VEX')
    if (summary) output.stderr(summary)
  } else if (config.format === 'json') output.json(toJson(jsonReport()))
  else if (summary) output.stdout(summary)
  if (decision.exitCode !== decision.enforcedExitCode) {
    output.say(auditLine(decision.enforcedExitCode))
  }
  return decision.exitCode
}

/**
 * The Tekton results of a report, one file each. The verdict goes last: a verdict file on disk means the counts beside
 * it are this run's too.
 */
export function writeResults(files: FileSystem, dir: string, report: JsonReport): void {
  const results = Object.entries(tektonResults(report))
  const ordered = [...results.filter(([name]) => name !== 'verdict'), ...results.filter(([name]) => name === 'verdict')]
  files.writeAll(ordered.map(([name, content]) => [join(dir, name), content] as const))
}

/** What audit mode says when it lets through a run that enforce mode would have stopped. */
export const auditLine = (enforced: number) => {
  const why =
    enforced === EXIT.VIOLATION ? 'policy violated' : enforced === EXIT.USAGE ? 'configuration error' : 'no verdict'
  return `AUDIT: the gate would have failed here (exit ${enforced}, ${why}); --mode audit lets the pipeline go on`
}

/**
 * An option's raw value from the arguments (`--flag VALUE`, `--flag=VALUE`) or the environment, for a run whose options
 * did not parse.
 */
export function rawOption(
  argv: readonly string[],
  env: Environment['env'],
  flag: string,
  envName: string,
): string | undefined {
  for (let i = 0; i < argv.length && argv[i] !== '--'; i++) {
    if (argv[i] === flag) return argv[i + 1]
    if (argv[i]!.startsWith(`${flag}=`)) return argv[i]!.slice(flag.length + 1)
  }
  return env[envName]
}

/**
 * A usage error before the options were all read: said on stderr, and, when the arguments name a results
 * folder, written there too (verdict error, reason, message), so the TaskRun says why. In audit mode
 * (as the arguments or POLICY_MODE say it) the run still exits 0.
 */
export function failEarly(error: unknown, argv: readonly string[], io: Io, output: Output): number {
  const code = reportUsageError(error, output)
  if (!(error instanceof UsageError)) return code
  const resultsDir = rawOption(argv, io.env, '--results-dir', 'POLICY_RESULTS_DIR')?.trim()
  const audit = rawOption(argv, io.env, '--mode', 'POLICY_MODE')?.trim().toLowerCase() === 'audit'
  const report = buildJsonReport(
    { image: null, gate: null, mode: audit ? 'audit' : 'enforce' },
    { error: { code: error.code, message: error.message, usage: true } },
  )
  if (resultsDir) {
    try {
      writeResults(io.files, resultsDir, redactReport(report, output.secrets))
    } catch {
      output.say(`cannot write the results to ${resultsDir} either`)
    }
  }
  if (audit) output.say(auditLine(EXIT.USAGE))
  return report.exitCode
}

/**
 * A run that ended without a verdict: a signal, the deadline, a usage error found late, a no-verdict answer, or a bug.
 */
export function endWithoutVerdict(caught: unknown, ctx: RunContext): number {
  const { config, run, output, io } = ctx
  let error = caught
  if (io.signal.aborted && !(caught instanceof NoVerdictError)) error = io.signal.reason
  else if (run.deadline.aborted && !(caught instanceof NoVerdictError || caught instanceof UsageError)) {
    error = new NoVerdictError('TIMEOUT', `timed out after ${formatDuration(config.timeoutMs)} ${run.phase}`)
  }
  if (error instanceof InterruptedError) {
    output.say(`${error.message} before a verdict was reached`)
    return exitCodeFor(error)
  }
  if (error instanceof UsageError) {
    // Found after the options were read (a file, a Docker config): the report and the results say so too.
    reportUsageError(error, output)
    return emit(ctx, { error: { code: error.code, message: error.message, usage: true } })
  }
  const known = error instanceof NoVerdictError ? error : undefined
  const message = known ? known.message : `unexpected error, this is a bug: ${(error as Error)?.stack ?? String(error)}`
  output.say(`no verdict: ${message}`)
  return emit(ctx, { error: { code: known?.code ?? 'BUG', message } })
}

/** A usage error is one line and a pointer to --help (exit 2); anything else here is a bug (exit 3). */
export function reportUsageError(error: unknown, output: Output): number {
  if (error instanceof UsageError) {
    output.say(error.message)
    output.say('run with --help for usage')
  } else {
    output.say(`no verdict: unexpected error, this is a bug: ${(error as Error)?.stack ?? String(error)}`)
  }
  return exitCodeFor(error)
}
