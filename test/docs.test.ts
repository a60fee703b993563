// The README documents what the code does: every option, its variables, and every exit code.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { EXIT_CODES, OPTIONS } from '../policy.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

describe('README', () => {
  it.each(OPTIONS.map((option) => [option.flag, option] as const))('documents %s with its environment variables', (_flag, option) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${option.flag}`))
    expect(row, `no table row for ${option.flag}`).toBeDefined()
    for (const name of option.env ?? []) expect(row).toContain(`\`${name}\``)
  })

  it.each(EXIT_CODES.map(([code]) => [code]))('documents exit code %i', (code) => {
    expect(readme).toMatch(new RegExp(`^\\| ${code} \\| `, 'm'))
  })
})
