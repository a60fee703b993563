// The real judges of our manifests that ../shared/tools/k8s-check ships (CI lays the shared folder beside the
// checkout): ytt v0.45.0, Tekton v0.50.1's webhook and Pod builder, and the CRD schema validator with the real
// CRDs of Tekton, Cartographer, kapp-controller and secretgen-controller.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'

export const CHECKER = new URL('../../../shared/tools/k8s-check/', import.meta.url).pathname

const unpacked = new Map<string, string>()

/** A binary of the checker (`ytt`, `tekton-check-v0.50`), unpacked once per test file. */
export function checkerTool(name: string): string {
  const known = unpacked.get(name)
  if (known) return known
  const packed = `${CHECKER}bin/${name}.gz`
  if (!existsSync(packed))
    throw new Error(`this test needs ${packed} (the shared folder beside the checkout, as CI has it)`)
  const path = join(mkdtempSync(join(tmpdir(), 'k8s-check-')), name)
  writeFileSync(path, gunzipSync(readFileSync(packed)), { mode: 0o755 })
  unpacked.set(name, path)
  return path
}

export function ytt(args: string[]): string {
  return execFileSync(checkerTool('ytt'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A python3 that has PyYAML and jsonschema (scripts/dev.sh installs Debian's when none has). */
function schemaPython(): string {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import yaml, jsonschema']).status === 0) return python
  }
  throw new Error(
    'no python3 with PyYAML and jsonschema: run scripts/dev.sh test (it installs python3-yaml and python3-jsonschema)',
  )
}

/** The checker's validate_schemas.py on files or folders: every object against its real CRD schema. */
export function validateSchemas(paths: string[]): { ok: boolean; log: string } {
  const run = spawnSync(schemaPython(), [`${CHECKER}validate_schemas.py`, ...paths], { encoding: 'utf8' })
  return { ok: run.status === 0, log: `${run.stdout}${run.stderr}` }
}
