/** Whether a Docker engine answers, decided quickly (no Docker on this project's CI machines). */
import { existsSync } from 'node:fs'
import { request } from 'node:http'

export async function dockerAvailable(timeoutMs = 1500): Promise<boolean> {
  if (process.env.BURNWATCH_NO_DOCKER === '1') return false
  const host = process.env.DOCKER_HOST
  const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : host ? null : '/var/run/docker.sock'
  if (socketPath !== null && !existsSync(socketPath)) return false
  return new Promise((resolve) => {
    const opts = socketPath !== null ? { socketPath, path: '/_ping' } : (() => {
      const u = new URL(host!.replace(/^tcp:/, 'http:'))
      return { host: u.hostname, port: Number(u.port || 2375), path: '/_ping' }
    })()
    const req = request({ ...opts, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
    req.end()
  })
}
