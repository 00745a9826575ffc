export {
  type Side,
  type OrderType,
  type OrderRequest,
  type ExitDistance,
  type BracketExits,
  ExitKind,
  type Fill,
  type OrderStatus,
  type OrderResult,
  type OrderState,
  type SlippageOptions,
  type SlippageConfig,
  type FeeOptions,
  type FeeConfig,
  type PartialFillOptions,
  type PaperVenueOptions,
  type PaperVenueConfig,
  RejectReason,
  FillAt,
} from './types.js';
export { applySlippage, compileFees, compileSlippage, feeForFill, type FeeSoFar } from './models.js';
export { PaperVenue, compilePaperVenueOptions, settledOrders } from './venue.js';
export { clientOrderId, type ClientOrderIdParts } from './ids.js';
