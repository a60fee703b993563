// The layout policy.ts's header promises: the modules in gate/ import one way (no cycle, types included), never
// the entry, and policy.ts names each of them in its map; and the bundle loads the registry, Kubernetes, VEX, attestation and
// ScanPolicy modules only when a run needs them (dist/ is built by the test setup).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'

const GATE = new URL('../gate/', import.meta.url)
const modules = readdirSync(GATE)
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -3))
const importsOf = (module: string) =>
  [
    ...readFileSync(new URL(`${module}.ts`, GATE), 'utf8').matchAll(
      /^import (?:type )?\{[^}]*\} from '(\.\.?\/[^']+)'/gm,
    ),
  ].map((match) => match[1]!)

describe('gate/', () => {
  it('imports one way: an order exists in which every module imports only modules before it', () => {
    const pending = new Map(
      modules.map((module) => [module, importsOf(module).map((path) => path.replace(/^\.\/(.*)\.ts$/, '$1'))]),
    )
    const ordered: string[] = []
    while (pending.size > 0) {
      const ready = [...pending]
        .filter(([, imports]) => imports.every((imported) => ordered.includes(imported)))
        .map(([module]) => module)
      expect(ready, `a cycle among ${[...pending.keys()].join(', ')}`).not.toEqual([])
      for (const module of ready) {
        ordered.push(module)
        pending.delete(module)
      }
    }
  })

  it('keeps every line of the program (policy.ts and gate/) within 120 columns, as prettier is set to', () => {
    const files = [new URL('../policy.ts', import.meta.url), ...modules.map((module) => new URL(`${module}.ts`, GATE))]
    const long = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, index) =>
          line.length > 120 ? [`${file.pathname.split('/').slice(-2).join('/')}:${index + 1}`] : [],
        ),
    )
    expect(long).toEqual([])
  })

  it("never imports the entry, and the entry's header maps every module", () => {
    for (const module of modules)
      expect(
        importsOf(module).filter((path) => !path.startsWith('./')),
        module,
      ).toEqual([])
    const header = readFileSync(new URL('../policy.ts', import.meta.url), 'utf8').split('*/')[0]!
    for (const module of modules) expect(header, module).toMatch(new RegExp(`\\*   (\\S+, )?${module}\\b`))
  })
})

describe('the bundle', () => {
  const DIST = new URL('../dist/policy.mjs', import.meta.url).pathname
  /** The files node reads before the first line of main runs: the entry and what it imports statically. */
  function loadedAtStart(file: string, seen = new Set<string>()): Set<string> {
    seen.add(file)
    // An import of one line, or the last line of one esbuild wraps (`} from "./chunks/chunk-X.mjs";`).
    const imports = readFileSync(file, 'utf8').matchAll(/^(?:import [^\n]*|\}) from "(\.\/[^"]+)"/gm)
    for (const [, path] of imports) {
      const next = join(dirname(file), path!)
      if (!seen.has(next)) loadedAtStart(next, seen)
    }
    return seen
  }

  it('loads node:crypto only with import(): hashing and signing are for the runs that attest or read a registry', () => {
    const atStart = [...loadedAtStart(DIST)].map((file) => readFileSync(file, 'utf8'))
    expect(atStart.filter((text) => /^import [^\n]* from "node:crypto"/m.test(text))).toEqual([])
  })

  it.each([
    ['the registry client', 'function readScanResult('],
    ['the Kubernetes follower', 'function openScanList('],
    ['the ScanPolicy reader', 'function scanPolicyFrom('],
    ['the VEX reader and writer', 'function vexStatementsFrom('],
    ['the attestation signer', 'function signEnvelope('],
  ])('loads %s only with import(), so --help and the store path do not parse it', (_name, marker) => {
    const atStart = [...loadedAtStart(DIST)].map((file) => readFileSync(file, 'utf8'))
    expect(atStart.some((text) => text.includes(marker))).toBe(false)
    const chunks = readdirSync(join(dirname(DIST), 'chunks')).filter((file) => file.endsWith('.mjs'))
    expect(chunks.some((file) => readFileSync(join(dirname(DIST), 'chunks', file), 'utf8').includes(marker))).toBe(true)
  })
})
