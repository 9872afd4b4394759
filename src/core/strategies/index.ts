/**
 * Every reload strategy, by the name the configuration uses (`strategy`, config's
 * STRATEGY_NAMES). A new strategy is a module beside these, implementing ReloadStrategy
 * (strategy.ts), listed here; the supervisor never branches on a name.
 */
import type { StrategyName } from '../../config/types.js';
import type { ReloadStrategy } from '../strategy.js';
import { all } from './all.js';
import { canary } from './canary.js';
import { rolling } from './rolling.js';

export const STRATEGIES: Record<StrategyName, ReloadStrategy> = { all, rolling, canary };
