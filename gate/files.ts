import { closeSync, constants as fsConstants, createReadStream, fstatSync, openSync, readFileSync } from 'node:fs'
import { abortable, bodyTooLarge, decodeBody, readCapped } from './http.ts'
import { checkToken, exemptionsFrom } from './input.ts'
import type { BodyLimits, FileSystem, Io, ReadOptions, RunContext } from './io.ts'
import { parseJsonBody } from './json.ts'
import { checkCa } from './options.ts'
import { redact } from './safe-text.ts'
import { LARGE_BODY_BYTES, MAX_CONFIG_FILE_BYTES, NoVerdictError, UsageError, importCommonJs } from './vocabulary.ts'
import type { Exemption, StoreSettings, StoreSource, UsageCode } from './vocabulary.ts'

/**
 * A file the user named, read to the end within `maxBytes` and the run's deadline: a FIFO, /dev/zero or a
 * stalled writer cannot hang the gate or flood its memory. Unreadable is a usage error naming `what`; the
 * path is left out where it may be a secret pasted in the wrong place.
 */
export async function readNamedFile(path: string, what: string, options: ReadOptions): Promise<string> {
  let fd: number | undefined
  let stream: (NodeJS.ReadableStream & { destroy(): void }) | undefined
  try {
    // Without blocking: a FIFO that nobody writes to would otherwise hold a libuv thread in open(2), and the
    // process could not even exit. FIFOs and sockets are then read as pipes (epoll), never by a thread.
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
    const stat = fstatSync(fd)
    if (stat.isFile()) {
      // A regular file cannot hang: its size is checked first, then it is read in one call.
      if (stat.size > options.limits.maxBytes) throw options.limits.tooLarge()
      return decodeBody(readFileSync(fd), options.limits)
    }
    if (stat.isFIFO() || stat.isSocket()) {
      const { Socket } = await import('node:net')
      stream = new Socket({ fd, readable: true, writable: false })
    } else {
      stream = createReadStream('', { fd, highWaterMark: 1 << 20 }) // a device such as /dev/zero: read within the cap
    }
    fd = undefined // the stream owns it now
    return await abortable(readCapped(stream, options.limits), options.signal)
  } catch (error) {
    if (options.signal.aborted || error instanceof NoVerdictError || error instanceof UsageError)
      throw options.signal.aborted ? options.signal.reason : error
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new UsageError(
      'FILE',
      `cannot read ${what}${options.showPath === false ? '' : ` ${path}`} (${reason}): check the path and that the ` +
        `file is mounted`,
    )
  } finally {
    stream?.destroy()
    if (fd !== undefined) closeSync(fd)
  }
}

export const configFileLimits = (what: string): BodyLimits => ({
  maxBytes: MAX_CONFIG_FILE_BYTES,
  tooLarge: () =>
    new UsageError(
      'FILE',
      `${what} is larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB: that is not a ${what.replace(/^the /, '')}`,
    ),
})

/** The token and CA files, read and checked: the store is then ready to ask. */
export async function loadStoreSettings(
  source: StoreSource,
  timeoutMs: number,
  signal: AbortSignal,
  files: FileSystem,
): Promise<StoreSettings> {
  const token =
    'value' in source.token
      ? source.token.value
      : checkToken(
          await files.read(source.token.file, `the token file named by ${source.token.origin}`, {
            signal,
            limits: configFileLimits('the token file'),
            showPath: false,
          }),
          source.token.origin,
        )
  let ca: StoreSettings['ca']
  if (source.ca && 'pem' in source.ca) ca = { pem: checkCa(source.ca.pem, source.ca.origin), origin: source.ca.origin }
  else if (source.ca)
    ca = {
      pem: checkCa(
        await files.read(source.ca.file, 'the CA file', { signal, limits: configFileLimits('the CA file') }),
        source.ca.file,
      ),
      origin: source.ca.file,
    }
  return {
    baseUrl: source.baseUrl,
    token,
    ...(ca ? { ca } : {}),
    timeoutMs,
    pollIntervalMs: source.pollIntervalMs,
    proxied: source.proxied,
  }
}

/** The --exemptions file, parsed and checked; a bad file is a usage error naming the entry and field. */
export async function loadExemptions(
  path: string,
  secrets: readonly string[],
  signal: AbortSignal,
  io: Io,
): Promise<Exemption[]> {
  const source = redact(
    await io.files.read(path, '--exemptions', { signal, limits: configFileLimits('--exemptions') }),
    secrets,
  )
  const documents = await parseYamlConfig(source, path, 'EXEMPTIONS', 'as exemptions', io)
  if (documents.length > 1)
    throw new UsageError(
      'EXEMPTIONS',
      `${path}: holds ${documents.length} YAML documents: put every exemption in one "exemptions:" list`,
    )
  return exemptionsFrom(documents[0], path)
}

/**
 * A YAML configuration file (exemptions, a ScanPolicy) as data, each document in turn: duplicate keys and
 * aliases that expand past 100 (a "billion laughs" file) refused by yaml itself, every failure a usage error
 * naming the file and the line.
 */
export async function parseYamlConfig(
  text: string,
  path: string,
  code: UsageCode,
  readAs: string,
  io: Io,
): Promise<unknown[]> {
  const { parseAllDocuments } = await importCommonJs(import('yaml'))
  return io.blocking(() => {
    const parsed = parseAllDocuments(text, { uniqueKeys: true })
    const documents = Array.isArray(parsed) ? parsed : [parsed]
    const problem = documents.flatMap((document) => document.errors)[0]
    if (problem)
      throw new UsageError(
        code,
        `${path}: not valid YAML at line ${problem.linePos?.[0].line ?? '?'}: ${problem.message.split('\n')[0]}`,
      )
    return documents.map((document) => {
      try {
        return document.toJS({ maxAliasCount: 100 })
      } catch (error) {
        throw new UsageError(code, `${path}: cannot be read ${readAs} (${(error as Error).message.split('\n')[0]})`)
      }
    })
  })
}

/** SHA-256 in hex; node:crypto is loaded only by the runs that hash (--attest): start-up does not pay for it. */
export async function sha256Of(text: string): Promise<string> {
  const { createHash } = await import('node:crypto')
  return createHash('sha256').update(text).digest('hex')
}

/**
 * A saved document (--input, --baseline-input) from a file or stdin, within --max-body-size, the memory left
 * and the deadline, parsed: a signal still ends the parse at once.
 */
export async function readSavedDocument(
  option: '--input' | '--baseline-input',
  path: string,
  ctx: RunContext,
  /** --attest: where the file is and the sha256 of its bytes go. */
  record?: Array<{ uri: string; sha256: string }>,
): Promise<unknown> {
  const { config, run, output, io } = ctx
  const what = `${option} ${path}`
  run.phase = `reading ${what}`
  const limits: BodyLimits = {
    maxBytes: config.maxBodyBytes,
    tooLarge: bodyTooLarge(what, config.maxBodyBytes),
    json: { what, available: io.availableMemory },
  }
  const body =
    path === '-'
      ? await abortable(readCapped(io.stdin as AsyncIterable<Buffer>, limits), run.deadline)
      : await io.files.read(path, option, { signal: run.deadline, limits })
  if (body.length > LARGE_BODY_BYTES) output.say(`parsing ${Math.round(body.length / 2 ** 20)} MiB from ${option}`)
  if (record) record.push({ uri: path === '-' ? 'stdin' : path, sha256: await sha256Of(body) })
  return io.blocking(() => parseJsonBody(body, what))
}
