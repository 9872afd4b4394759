import { Controller, Get, Header } from '@nestjs/common';

@Controller()
export class AppController {
  @Get('gen')
  @Header('Cache-Control', 'no-store')
  gen(): string {
    return 'ok\n';
  }
}
