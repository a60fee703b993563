import { dirname, join } from 'node:path'
import {
  parseBoolean,
  parseDuration,
  parseFormat,
  parseGate,
  parseImageRef,
  parseLabelSelector,
  parseMode,
  parseNewerThan,
  parseOciRef,
  parseReportFormat,
  parseScore,
  parseSize,
  parseStoreUrl,
  parseUnknownAs,
  checkProxyEnv,
  checkToken,
} from './input.ts'
import { DEFAULT_CA_PATH, GATES, OPTIONS, SEVERITY_RANK, UsageError } from './vocabulary.ts'
import type {
  AttestSettings,
  Gate,
  Config,
  Environment,
  Flag,
  ImageRef,
  OciRef,
  OptionSpec,
  RegistryFiles,
  ReportFormat,
  ScanPolicyImport,
  ScanResultSource,
  StoreSource,
} from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Configuration: flags, then env, then defaults; all checked before any file is read or request sent.

export function pick(
  values: ReadonlyMap<string, string>,
  env: Environment['env'],
  flag: string,
  envName?: string,
): { value: string; origin: string } | undefined {
  const fromFlag = values.get(flag)
  if (fromFlag !== undefined) return { value: fromFlag, origin: flag }
  const fromEnv = envName ? env[envName] : undefined
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv, origin: envName! }
  return undefined
}

/** A repeatable option's paths: its comma-separated list, each trimmed; an empty entry is refused. */
export function listOption(option: { value: string; origin: string } | undefined): string[] {
  if (!option) return []
  const items = option.value.split(',').map((item) => item.trim())
  if (items.some((item) => !item))
    throw new UsageError(
      'OPTION',
      `${option.origin} "${option.value}" has an empty entry: list paths separated by commas`,
    )
  return items
}

/** json unless the report file's name says sarif (.sarif, .sarif.json) or junit (.xml). */
export function reportFormatFor(path: string): ReportFormat {
  if (/\.sarif(\.json)?$/i.test(path)) return 'sarif'
  return /\.xml$/i.test(path) ? 'junit' : 'json'
}

export const specOf = (flag: Flag): OptionSpec => OPTIONS.find((option) => option.flag === flag)!

/**
 * The options of one run, read once: each from its flag, else its environment variable, else (withDefault) its default.
 */
export interface OptionReader {
  readonly get: (flag: Flag) => { readonly value: string; readonly origin: string } | undefined
  readonly read: <T>(flag: Flag, parse: (value: string, origin: string) => T) => T | undefined
  readonly withDefault: <T>(flag: Flag, parse: (value: string, origin: string) => T) => T
}

/**
 * Each option from its flag, else from its environment variable, else (with `withDefault`) from its default in OPTIONS.
 */
export function optionReader(values: ReadonlyMap<string, string>, env: Environment['env']): OptionReader {
  const get = (flag: Flag) => pick(values, env, flag, specOf(flag).env)
  const read = <T>(flag: Flag, parse: (value: string, origin: string) => T): T | undefined => {
    const input = get(flag)
    return input ? parse(input.value, input.origin) : undefined
  }
  const withDefault = <T>(flag: Flag, parse: (value: string, origin: string) => T): T => {
    const fallback = specOf(flag).default
    // a bug in the table, caught by the tests
    if (fallback === undefined) throw new Error(`${flag} has no default in OPTIONS`)
    return read(flag, parse) ?? parse(fallback, `the default ${flag}`)
  }
  return { get, read, withDefault }
}

/** The levels a warning may start at under this gate: those below it. */
const belowGate = (gate: Exclude<Gate, 'none'>) =>
  GATES.filter((level) => level !== 'none' && SEVERITY_RANK[level] < SEVERITY_RANK[gate])

/** --report-file must name a file whose folder exists and is writable: found now, not after a 20-minute wait. */
export function checkReportPath(input: { value: string; origin: string }, environment: Environment): string {
  const fail = (problem: string) =>
    new UsageError('REPORT_FILE', `${input.origin} ${JSON.stringify(input.value)} ${problem}`)
  if (!input.value.trim()) throw fail('is empty: name the file to write, e.g. report.sarif')
  if (input.value.endsWith('/') || environment.isDirectory(input.value))
    throw fail('is a folder: name a file in it, e.g. report.json')
  if (!environment.isWritableDirectory(dirname(input.value)))
    throw fail('cannot be written: its folder is missing or not writable')
  return input.value
}

export function checkResultsDir(input: { value: string; origin: string }, environment: Environment): string {
  if (!input.value.trim())
    throw new UsageError('RESULTS_DIR', `${input.origin} is empty: in a Task use /tekton/results`)
  if (!environment.isWritableDirectory(input.value)) {
    throw new UsageError(
      'RESULTS_DIR',
      `${input.origin} ${input.value} is not a writable directory: in a Task use /tekton/results`,
    )
  }
  return input.value
}

export function resolveConfig(
  values: ReadonlyMap<string, string>,
  positionals: readonly string[],
  environment: Environment,
  now = Date.now(),
  scanPolicy?: ScanPolicyImport,
  options: OptionReader = optionReader(values, environment.env),
): Config {
  const { env } = environment
  const { get, read, withDefault } = options
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    throw new UsageError(
      'INSECURE_TLS',
      'NODE_TLS_REJECT_UNAUTHORIZED=0 would send the token to an unverified store: unset it and give the CA with ' +
        '--ca-cert',
    )
  }
  if (positionals.length > 1)
    throw new UsageError('IMAGE', `one image at a time, got ${positionals.length}: ${positionals.join(' ')}`)
  // `store` names the default source, so a workload can take back a chain's `auto`.
  const scanResultGiven = get('--scan-result')
  const scanResultInput = scanResultGiven?.value.trim().toLowerCase() === 'store' ? undefined : scanResultGiven
  const followsScan = scanResultInput !== undefined && scanResultInput.value.trim().toLowerCase() === 'auto'
  // A fixed document (--input, a scan result's reference) may name what it scanned; otherwise the image is needed.
  const fixedDocument =
    values.get('--input') !== undefined
      ? '--input'
      : scanResultInput && !followsScan
        ? 'a fixed --scan-result'
        : undefined
  const image = positionals[0] === undefined && fixedDocument ? undefined : parseImageRef(positionals[0] ?? '')
  const gate = read('--gate', parseGate) ?? scanPolicy?.gate
  if (!gate) throw new UsageError('GATE', 'no gate given: set --gate or GATE to none, low, medium, high or critical')
  const resultsInput = get('--results-dir')
  const resultsDir = resultsInput ? checkResultsDir(resultsInput, environment) : undefined
  const reportInput = get('--report-file')
  const reportPath = reportInput ? checkReportPath(reportInput, environment) : undefined
  const failOnScore = read('--fail-on-score', parseScore)
  const newerThan = read('--newer-than', (value, origin) => parseNewerThan(value, now, origin))
  const exemptionsFile = get('--exemptions')?.value
  const scanSelector = read('--scan-selector', parseLabelSelector)
  const warnAt = withDefault('--warn-at', (value, origin) => parseGate(value, origin))
  if (warnAt !== 'none' && (gate === 'none' || SEVERITY_RANK[warnAt] >= SEVERITY_RANK[gate])) {
    const fix =
      gate === 'none'
        ? 'gate none evaluates nothing: to report without failing, use --mode audit'
        : `warnings are what does not block, so below the gate (${gate}): use ${belowGate(gate).join(', ') || 'none'}`
    throw new UsageError('WARN_AT', `--warn-at ${warnAt} with --gate ${gate}: ${fix}`)
  }
  const kevFile = get('--kev')?.value
  const vexFiles = listOption(get('--vex'))
  const attest = resolveAttest(options, environment, image)
  const baselineImage = read('--baseline', (value, origin) => parseImageRef(value, origin))
  const baselineInput = get('--baseline-input')?.value
  const common: Config = {
    ...(image ? { image } : {}),
    gate,
    format: withDefault('--format', parseFormat),
    mode: withDefault('--mode', parseMode),
    unknownAs:
      read('--unknown-as', parseUnknownAs) ?? scanPolicy?.unknownAs ?? withDefault('--unknown-as', parseUnknownAs),
    triage: read('--triage', parseBoolean) ?? false,
    onlyFixed: read('--only-fixed', parseBoolean) ?? false,
    maxBodyBytes: withDefault('--max-body-size', parseSize),
    timeoutMs: withDefault('--timeout', parseDuration),
    ...(failOnScore === undefined ? {} : { failOnScore }),
    ...(newerThan === undefined ? {} : { newerThan }),
    ...(exemptionsFile ? { exemptionsFile } : {}),
    ...(scanSelector ? { scanSelector } : {}),
    warnAt,
    ...(kevFile ? { kevFile } : {}),
    ...(vexFiles.length ? { vexFiles } : {}),
    ...(read('--vex-accepts-kev', parseBoolean) ? { vexAcceptsKev: true } : {}),
    ...(read('--print-vex', parseBoolean) ? { printVex: true } : {}),
    ...(attest ? { attest } : {}),
    ...(scanPolicy ? { scanPolicy } : {}),
    ...(baselineImage || baselineInput
      ? {
          baseline: {
            ...(baselineImage ? { image: baselineImage } : {}),
            ...(baselineInput ? { input: baselineInput } : {}),
          },
        }
      : {}),
    ...(resultsDir ? { resultsDir } : {}),
    ...(reportPath
      ? {
          report: {
            path: reportPath,
            format: read('--report-format', parseReportFormat) ?? reportFormatFor(reportPath),
          },
        }
      : {}),
  }
  if (common.printVex && common.format === 'json')
    throw new UsageError(
      'OPTION',
      '--print-vex and --format json both write to stdout: keep --print-vex and write the report with --report-file',
    )
  if (gate === 'none') return common
  const input = values.get('--input')
  const notFromStore = input !== undefined ? '--input' : scanResultInput?.origin
  if (notFromStore) {
    if (input !== undefined && scanResultInput)
      throw new UsageError(
        'INPUT',
        `--input and ${scanResultInput.origin} both say where the scan comes from: give one`,
      )
    // --triage reads a document's own analysis (CycloneDX VEX inside the scan); only --newer-than needs the store.
    if (common.newerThan !== undefined)
      throw new UsageError('INPUT', `--newer-than asks the store, which ${notFromStore} does not: drop one of them`)
  }
  if (baselineImage && !baselineInput && fixedDocument) {
    throw new UsageError(
      'BASELINE',
      `--baseline with ${fixedDocument}: there is nowhere to read the baseline's scan from, so give its saved ` +
        `document with --baseline-input`,
    )
  }
  if (input !== undefined) {
    if (!input.trim()) throw new UsageError('INPUT', '--input is empty: name the saved report, or - for stdin')
    return { ...common, source: { input } }
  }
  if (scanResultInput)
    return {
      ...common,
      source: { scanResult: resolveScanResultSource(scanResultInput, followsScan, options, environment) },
    }
  return { ...common, source: { store: resolveStoreSource(options, environment) } }
}

/** A registry's credentials (--registry-config, else $DOCKER_CONFIG/config.json when there) and CA, as given. */
export function resolveRegistryFiles({ get, withDefault }: OptionReader, environment: Environment): RegistryFiles {
  const { env } = environment
  const configInput = get('--registry-config')
  const defaultConfig = env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : undefined
  const registryConfig = configInput
    ? { file: configInput.value, origin: configInput.origin }
    : defaultConfig && environment.fileExists(defaultConfig)
      ? { file: defaultConfig, origin: 'DOCKER_CONFIG' }
      : undefined
  const caInput = get('--registry-ca-cert')
  return {
    ...(registryConfig ? { registryConfig } : {}),
    ...(caInput ? { registryCa: { file: caInput.value, origin: caInput.origin } } : {}),
    pollIntervalMs: withDefault('--poll-interval', parseDuration),
    proxied: checkProxyEnv(env),
  }
}

/**
 * --attest: the key is required, and the image must name its registry and repository, where the attestation is
 * pushed; undefined without --attest (a key alone is not used: the Task always names where one would be mounted).
 */
export function resolveAttest(
  options: OptionReader,
  environment: Environment,
  image: ImageRef | undefined,
): AttestSettings | undefined {
  const wanted = options.get('--attest')
  if (!wanted || !parseBoolean(wanted.value, wanted.origin)) return undefined
  const key = options.get('--attest-key')
  if (!key)
    throw new UsageError(
      'ATTEST',
      `${wanted.origin} signs the verdict: give the key with --attest-key FILE (POLICY_ATTEST_KEY), the ` +
        'cosign.key of cosign generate-key-pair or a PKCS#8 PEM',
    )
  let target: OciRef | undefined
  try {
    target = image && image.reference !== image.digest ? parseOciRef(image.reference, 'the image') : undefined
  } catch {
    target = undefined
  }
  if (!target)
    throw new UsageError(
      'ATTEST',
      `${wanted.origin} pushes the attestation beside the image: give the image as ` +
        `registry.example.com/repository@sha256:<64 hex>${image ? `, not "${image.reference}"` : ''}`,
    )
  return { ...resolveRegistryFiles(options, environment), key: { file: key.value, origin: key.origin }, target }
}

export function resolveScanResultSource(
  input: { value: string; origin: string },
  auto: boolean,
  options: OptionReader,
  environment: Environment,
): ScanResultSource {
  const { env } = environment
  if (auto && !env.KUBERNETES_SERVICE_HOST?.trim()) {
    throw new UsageError(
      'KUBERNETES',
      `${input.origin} auto follows the image's ImageVulnerabilityScan from inside a pod, and ` +
        `KUBERNETES_SERVICE_HOST is not set: give the scan result's reference instead (status.scanResult)`,
    )
  }
  return { ref: auto ? 'auto' : parseOciRef(input.value, input.origin), ...resolveRegistryFiles(options, environment) }
}

export function resolveStoreSource({ get, withDefault }: OptionReader, environment: Environment): StoreSource {
  const { env } = environment
  const urlInput = get('--url')
  if (!urlInput)
    throw new UsageError(
      'URL',
      'no store given: set --url or METADATA_STORE_URL (e.g. metadata-store.<ingress domain>), or evaluate a saved ' +
        'report with --input',
    )
  const baseUrl = parseStoreUrl(urlInput.value, urlInput.origin)
  const proxied = checkProxyEnv(env)

  const tokenFile = get('--token-file')
  let token: StoreSource['token']
  if (tokenFile) {
    if (!tokenFile.value.trim())
      throw new UsageError('TOKEN', `${tokenFile.origin} is empty: name the file that holds the token`)
    token = { file: tokenFile.value, origin: tokenFile.origin }
  } else if (env.ACCESS_TOKEN !== undefined) token = { value: checkToken(env.ACCESS_TOKEN, 'ACCESS_TOKEN') }
  else
    throw new UsageError(
      'TOKEN',
      'no token given: set ACCESS_TOKEN (from secret metadata-store-access-token), ACCESS_TOKEN_FILE or --token-file',
    )

  const caInput = get('--ca-cert')
  let ca: StoreSource['ca']
  if (caInput && caInput.origin !== '--ca-cert' && caInput.value.includes('-----BEGIN'))
    ca = { pem: caInput.value, origin: caInput.origin }
  else if (caInput) ca = { file: caInput.value, origin: caInput.origin }
  else if (environment.fileExists(DEFAULT_CA_PATH)) ca = { file: DEFAULT_CA_PATH, origin: 'the default' }

  return {
    baseUrl,
    token,
    ...(ca ? { ca } : {}),
    pollIntervalMs: withDefault('--poll-interval', parseDuration),
    proxied,
  }
}

/** The CA's PEM must hold a certificate; anything else is the wrong file or secret key. */
export function checkCa(
  pem: string,
  origin: string,
  whose = "the store's CA (secret metadata-store-cert, key caCrt)",
): string {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError('CA', `the CA from ${origin} holds no PEM certificate: give ${whose}`)
  }
  return pem
}
