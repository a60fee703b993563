// The gate's own registry client as the release scripts use it (scripts/attach-sbom.ts, scripts/sign-image.ts): the
// credentials `docker login` wrote ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, read by the gate's
// credentialsFor), the CA where Docker and buildah read it (/etc/docker/certs.d/HOST/ca.crt), pull and push, retried
// within five minutes.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createHttpClient } from '../gate/http.ts'
import { parseOciRef } from '../gate/input.ts'
import { parseJson } from '../gate/json.ts'
import { registryTransport } from '../gate/registry.ts'
import type { PushTarget, RegistryAccess, RegistryGet } from '../gate/registry.ts'

/** REGISTRY/REPOSITORY@DIGEST opened for pull and push; `close` ends its connections. */
export async function openReleaseRegistry(
  reference: string,
  script: string,
): Promise<PushTarget & { readonly get: RegistryGet; readonly close: () => Promise<void> }> {
  const ref = parseOciRef(reference, script)
  const caFile = `/etc/docker/certs.d/${ref.registry}/ca.crt`
  const configFile = join(process.env.DOCKER_CONFIG ?? join(process.env.HOME ?? '/root', '.docker'), 'config.json')
  const access: RegistryAccess = {
    ...(existsSync(configFile)
      ? { dockerConfig: { document: parseJson(readFileSync(configFile, 'utf8')), origin: configFile } }
      : {}),
    ...(existsSync(caFile) ? { ca: { pem: readFileSync(caFile, 'utf8'), origin: caFile } } : {}),
    proxied: false,
    timeoutMs: 300_000,
    pollIntervalMs: 1_000,
  }
  const client = await createHttpClient(access)
  const deps = {
    now: Date.now,
    sleep: (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }),
    random: Math.random,
    progress: (line: string) => console.error(`${script}: ${line}`),
    signal: new AbortController().signal,
    started: Date.now(),
    blocking: <T>(work: () => T) => work(),
  }
  const { get, send } = registryTransport(ref, access, client, deps, [], 'push')
  return { get, send, registry: ref.registry, repository: ref.repository, close: client.close }
}
