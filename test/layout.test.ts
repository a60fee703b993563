// The layout policy.ts's header promises: the modules in gate/ import one way (no cycle, types included), never
// the entry, and policy.ts names each of them in its map.
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const GATE = new URL('../gate/', import.meta.url)
const modules = readdirSync(GATE).filter((file) => file.endsWith('.ts')).map((file) => file.slice(0, -3))
const importsOf = (module: string) =>
  [...readFileSync(new URL(`${module}.ts`, GATE), 'utf8').matchAll(/^import (?:type )?\{[^}]*\} from '(\.\.?\/[^']+)'/gm)].map((match) => match[1]!)

describe('gate/', () => {
  it('imports one way: an order exists in which every module imports only modules before it', () => {
    const pending = new Map(modules.map((module) => [module, importsOf(module).map((path) => path.replace(/^\.\/(.*)\.ts$/, '$1'))]))
    const ordered: string[] = []
    while (pending.size > 0) {
      const ready = [...pending].filter(([, imports]) => imports.every((imported) => ordered.includes(imported))).map(([module]) => module)
      expect(ready, `a cycle among ${[...pending.keys()].join(', ')}`).not.toEqual([])
      for (const module of ready) {
        ordered.push(module)
        pending.delete(module)
      }
    }
  })

  it('never imports the entry, and the entry\'s header maps every module', () => {
    for (const module of modules) expect(importsOf(module).filter((path) => !path.startsWith('./')), module).toEqual([])
    const header = readFileSync(new URL('../policy.ts', import.meta.url), 'utf8').split('*/')[0]!
    for (const module of modules) expect(header, module).toMatch(new RegExp(`\\*   (\\S+, )?${module}\\b`))
  })
})
