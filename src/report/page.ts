import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Text made safe to put between HTML tags or in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/**
 * JSON that can sit inside a `<script>` element: `<`, `>` and `&` become `\u003c`… escapes (so a
 * `</script>` in a symbol or a strategy name cannot close the element), as do U+2028 and U+2029.
 * `JSON.parse` of the element's text gives the value back exactly.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The id of the `<script type="application/json">` element that holds a page's data. */
export const DATA_ELEMENT_ID = 'tradeswarm-data';

let library: { readonly js: string; readonly css: string } | undefined;

/** uPlot's script and style, read from node_modules (never copied into the repository), once per process. */
function chartLibrary(): { readonly js: string; readonly css: string } {
  if (library !== undefined) return library;
  const require = createRequire(import.meta.url);
  const read = (file: string): string => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
  // A "</script" could only sit in a string or a comment of the library, where "<\/script" means the same.
  library = { js: read('uPlot.iife.min.js').replace(/<\/(script)/gi, '<\\/$1'), css: read('uPlot.min.css') };
  return library;
}

/** A chart the page's script draws with uPlot: `data[0]` the times (ms), then one array per series (`null`: no point). */
export interface ChartData {
  readonly id: string;
  /** How the y axis is labelled. */
  readonly format: 'money' | 'percent' | 'price';
  readonly series: ReadonlyArray<{ readonly label: string; readonly color: string; readonly points?: boolean }>;
  readonly data: ReadonlyArray<ReadonlyArray<number | null>>;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:480px}.chart{margin:8px 0 16px}.note{color:#666}
.warn{color:#8a4b00}#chart-errors{color:#b00020}
`;

/**
 * Draws every `data-chart` element from the data's `charts`. Hand-written: a few lines that hand
 * uPlot the series; uPlot itself does the drawing. Errors are written into the page (a test reads them).
 */
const SCRIPT = `
(function(){
  var errors=document.getElementById('chart-errors');
  try{
    var data=JSON.parse(document.getElementById('${DATA_ELEMENT_ID}').textContent);
    var fmt={
      money:function(v){return v==null?'':v.toLocaleString('en-US',{maximumFractionDigits:2});},
      percent:function(v){return v==null?'':(v*100).toFixed(2)+' %';},
      price:function(v){return v==null?'':String(+v.toPrecision(8));}
    };
    (data.charts||[]).forEach(function(chart){
      var el=document.getElementById(chart.id);
      var f=fmt[chart.format];
      var series=[{}].concat(chart.series.map(function(s){
        return s.points?{label:s.label,stroke:s.color,fill:s.color,paths:function(){return null;},points:{show:true,size:9,fill:s.color,stroke:s.color},value:function(u,v){return f(v);}}
          :{label:s.label,stroke:s.color,width:1,spanGaps:true,points:{show:false},value:function(u,v){return f(v);}};
      }));
      new uPlot({width:Math.max(320,el.clientWidth||960),height:280,ms:1,series:series,
        axes:[{},{size:80,values:function(u,vals){return vals.map(f);}}]},chart.data,el);
    });
  }catch(e){errors.textContent='charts failed: '+e;}
})();
`;

/** A whole page: the library and the data inlined, nothing fetched when it opens. `body` must be escaped HTML already. */
export function htmlDocument(options: { readonly title: string; readonly body: string; readonly data: unknown }): string {
  const { js, css } = chartLibrary();
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(options.title)}</title>`,
    `<style>${css}${STYLE}</style>`,
    '</head><body>',
    options.body,
    '<div id="chart-errors"></div>',
    `<script type="application/json" id="${DATA_ELEMENT_ID}">${jsonForScript(options.data)}</script>`,
    `<script>${js}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** An HTML table; cells are escaped here. A cell given as `{ number }` is right-aligned. */
export function htmlTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | { readonly number: string }>>): string {
  const cell = (value: string | { readonly number: string }): string =>
    typeof value === 'string' ? `<td>${escapeHtml(value)}</td>` : `<td class="n">${escapeHtml(value.number)}</td>`;
  return `<table><thead><tr>${header.map((title) => `<th>${escapeHtml(title)}</th>`).join('')}</tr></thead><tbody>\n${rows.map((row) => `<tr>${row.map(cell).join('')}</tr>`).join('\n')}\n</tbody></table>`;
}

export const formatPercent = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(2)} %`);
export const formatNumber = (value: number | null, digits: number): string =>
  value === null ? '-' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
/** A bar time as an ISO date, without the time of day at midnight UTC. */
export function formatTime(timeMs: number): string {
  const iso = new Date(timeMs).toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : `${iso.slice(0, 19)}Z`;
}

/**
 * A page's data, read back from its `<script type="application/json">` element (what `htmlDocument` embedded).
 * @throws Error when the text holds no such element.
 */
export function pageData(html: string): unknown {
  const match = new RegExp(`<script type="application/json" id="${DATA_ELEMENT_ID}">([^<]*)</script>`).exec(html);
  if (match === null) throw new Error(`no <script id="${DATA_ELEMENT_ID}"> element in the page`);
  return JSON.parse(match[1] as string);
}
