/** Commands that run the pipeline's stages (wired to the service factories). */
import type { Command } from './main.ts'
import { runStages, type StageName } from './stages.ts'

const stage =
  (...names: StageName[]): Command =>
  async (_args, ctx) =>
    runStages(names, ctx.config(), ctx.out)

export const commands: Record<string, Command> = {
  aggregate: stage('aggregate'),
}
