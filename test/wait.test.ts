// gate/wait.ts: the one retry loop and the store's polling rules, on a fake clock (test/e2e/deadline.test.ts keeps
// the real clock), and the one reading of an HTTP answer.
import { describe, expect, it } from 'vitest'
import { NoVerdictError, type StoreSettings } from '../gate/vocabulary.ts'
import { parseRetryAfter, pollStore, timerMs, type StoreResponse, type WaitDeps, classifyStatus } from '../gate/wait.ts'
import { TEST_TOKEN } from './support/simulator.ts'

const STORE: StoreSettings = {
  baseUrl: new URL('https://store.example.com'),
  token: TEST_TOKEN,
  timeoutMs: 10_000,
  pollIntervalMs: 100,
  proxied: false,
}

const IMAGE_POLL = {
  url: new URL('https://store.example.com/api/v1/images/x'),
  what: 'the image',
  onNotFound: 'wait' as const,
  accept: (document: unknown) => ({ ready: true as const, value: document }),
}

const status = (code: number, headers: Record<string, string> = {}, body = ''): StoreResponse => ({
  status: code,
  headers,
  body,
})

const ok = status(200, {}, '{"Digest":"x"}')

const dnsError = () =>
  Object.assign(new Error('getaddrinfo ENOTFOUND store.example.com'), {
    code: 'ENOTFOUND',
    hostname: 'store.example.com',
  })

/** A fake clock: `sleep` moves it on; every request and every sleep is recorded. */
function fakeClock(answers: ReadonlyArray<StoreResponse | (() => Error)>) {
  let now = 0
  let served = 0
  const requests: number[] = []
  const sleeps: number[] = []
  const deps: WaitDeps = {
    fetch: async () => {
      requests.push(now)
      const next = answers[Math.min(served++, answers.length - 1)]!
      if (typeof next === 'function') throw next()
      return next
    },
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
    random: () => 0.5,
    progress: () => undefined,
    signal: new AbortController().signal,
    started: 0,
    blocking: (work) => work(),
  }
  return { deps, requests, sleeps, elapsed: () => now }
}

const gaps = (times: readonly number[]) => times.slice(1).map((time, index) => time - times[index]!)

describe('the polling rules, on a fake clock', () => {
  it.each([['0'], ['-1'], ['1.5'], ['Thu, 01 Jan 1970 00:00:00 GMT'], ['99999999999'], ['soon'], ['']])(
    'Retry-After %j never makes a hot loop: at least 1 s between tries, never past the deadline',
    async (retryAfter) => {
      const clock = fakeClock([status(503, { 'retry-after': retryAfter })])
      await expect(pollStore(IMAGE_POLL, STORE, clock.deps)).rejects.toMatchObject({ code: 'TIMEOUT' })
      expect(clock.requests.length).toBeLessThanOrEqual(11)
      for (const gap of gaps(clock.requests)) expect(gap).toBeGreaterThanOrEqual(1_000)
      expect(clock.elapsed()).toBeLessThanOrEqual(STORE.timeoutMs)
      for (const sleep of clock.sleeps) expect(sleep).toBeLessThanOrEqual(2 ** 31 - 1)
    },
  )

  it('waits as long as Retry-After asks when that is within the time left', async () => {
    const clock = fakeClock([status(429, { 'retry-after': '3' }), ok])
    await expect(pollStore(IMAGE_POLL, STORE, clock.deps)).resolves.toEqual({ Digest: 'x' })
    expect(clock.sleeps).toEqual([3_000])
  })

  it('backs off 1 s doubling to 30 s on failures, and polls at the interval while the store says 404', async () => {
    const failing = fakeClock([...Array.from({ length: 7 }, () => status(500)), ok])
    await pollStore(IMAGE_POLL, { ...STORE, timeoutMs: 600_000 }, failing.deps)
    expect(failing.sleeps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
    const waiting = fakeClock([status(404), status(404), ok])
    await pollStore(IMAGE_POLL, STORE, waiting.deps)
    expect(waiting.sleeps).toEqual([100, 100])
  })

  it('cuts the last wait to the time left and then times out, naming what it waited for', async () => {
    const clock = fakeClock([status(404)])
    await expect(pollStore(IMAGE_POLL, { ...STORE, timeoutMs: 250 }, clock.deps)).rejects.toThrow(
      /timed out after 250ms waiting for the image \(3 requests; last: not in the store yet \(404\)\)/,
    )
    expect(clock.sleeps).toEqual([100, 100, 50])
  })

  it('gives up on a host that does not resolve after three tries in a row, naming the host', async () => {
    const clock = fakeClock([dnsError])
    const failure = pollStore(IMAGE_POLL, STORE, clock.deps)
    await expect(failure).rejects.toBeInstanceOf(NoVerdictError)
    await expect(failure).rejects.toMatchObject({
      code: 'DNS',
      message: expect.stringContaining(
        'host store.example.com does not resolve (ENOTFOUND, 3 tries in a row): check --url',
      ),
    })
    expect(clock.requests).toEqual([0, 1_000, 3_000])
  })

  it('rides out a DNS hiccup shorter than three tries', async () => {
    const clock = fakeClock([dnsError, dnsError, ok])
    await expect(pollStore(IMAGE_POLL, STORE, clock.deps)).resolves.toEqual({ Digest: 'x' })
  })

  it('clamps timers to what Node can wait, never 1 ms', async () => {
    expect(timerMs(2 ** 40)).toBe(2 ** 31 - 1)
    expect(timerMs(-5)).toBe(0)
    const clock = fakeClock([status(503, { 'retry-after': '99999999999' }), ok])
    await pollStore(IMAGE_POLL, { ...STORE, timeoutMs: 2 ** 40 }, clock.deps)
    expect(clock.sleeps).toEqual([2 ** 31 - 1])
  })

  it('reads Retry-After strictly: whole seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('0', now)).toBe(0)
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0)
    for (const unreadable of ['1.5', '-1', '1e3', 'soon', '2026-01-01'])
      expect(parseRetryAfter(unreadable, now), unreadable).toBeUndefined()
  })
})

describe('classifyStatus, the one reading of an HTTP answer', () => {
  const read = (status: number, headers: Record<string, string> = {}) =>
    classifyStatus({ status, headers }, 0, {
      accept: () => 'accepted',
      said: () => `answered ${status}`,
      otherwise: () => `refused ${status}`,
    })

  it.each([
    [200, 'accepted'],
    [404, 'refused 404'],
    [401, 'refused 401'],
    [302, 'refused 302'],
  ])('reads %i as the peer means it', (status, meant) => expect(read(status)).toBe(meant))

  it.each([429, 500, 503])('waits on %i, after what Retry-After asks for', (status) => {
    expect(read(status, { 'retry-after': '7' })).toEqual({
      kind: 'retry',
      reason: `answered ${status}`,
      backoff: true,
      delayMs: 7_000,
    })
    expect(read(status)).toEqual({ kind: 'retry', reason: `answered ${status}`, backoff: true })
  })
})
