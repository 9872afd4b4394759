/**
 * The schema of one duration setting, shared by the master's schema (schema.ts) and the
 * deploy section's (deploy.ts): milliseconds or a string with a unit, within what a Node
 * timer holds ({@link durationLimit}). Each caller adds its own description and default.
 */
import { z } from './zod.js';
import { DURATION_PATTERN, durationLimit } from './duration.js';

/** A duration; `positive`: 0 is refused too. */
export const durationSchema = (positive = false) =>
  z.union([z.number().nonnegative(), z.string().regex(DURATION_PATTERN)])
    .superRefine((value, ctx) => {
      const problem = durationLimit(value, positive);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    });
