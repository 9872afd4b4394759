import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

async function bootstrap() {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  // Which hitless generation answered (the tests check every generation served).
  app.use((_req: unknown, res: { setHeader(k: string, v: string): void }, next: () => void) => {
    res.setHeader('x-generation', process.env.HITLESS_GENERATION ?? '');
    next();
  });
  // Nest's own SIGTERM/SIGINT handling: closes the app (and its HTTP server), then
  // re-raises the signal on itself.
  app.enableShutdownHooks();
  await app.listen(process.env.PORT ?? 3000);
}
void bootstrap();
