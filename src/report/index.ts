export { runReportPage, fillKind, CHART_BUCKETS, TABLE_ROWS, type RunPageInput, type PriceBar } from './run-page.js';
export { searchReportPage, heatmapAxes, type SearchPageInput } from './search-page.js';
export { downsample, drawdownOf, type Curve } from './downsample.js';
export { DATA_ELEMENT_ID, escapeHtml, pageData } from './page.js';
export { checkReportPath, writeReportPage } from './write.js';
