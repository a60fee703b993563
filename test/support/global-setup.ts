// Builds dist/policy.mjs once, so the black-box tests always run the bundle of the code under test.
import { execFileSync } from 'node:child_process'

export default function setup(): void {
  execFileSync(process.execPath, [new URL('../../build.mjs', import.meta.url).pathname], { stdio: 'inherit' })
}
