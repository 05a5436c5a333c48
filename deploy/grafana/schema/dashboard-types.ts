// What a dashboard this repository generates may contain, in Grafana 10.4.2's own types
// (@grafana/schema). Each panel kind is checked against that panel plugin's Options and
// FieldConfig, and each query against the Prometheus data query, with excess-property checks:
// a misspelt or unknown option fails as surely as a wrong type. Options may leave out what
// Grafana defaults (Partial), but whatever they set must be complete and well typed.
import type { DataQuery, Dashboard, FieldConfigSource, Panel, RowPanel } from "@grafana/schema";
import type * as AlertGroups from "@grafana/schema/dist/esm/raw/composable/alertgroups/panelcfg/x/AlertGroupsPanelCfg_types.gen";
import type * as Heatmap from "@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen";
import type * as Prometheus from "@grafana/schema/dist/esm/raw/composable/prometheus/dataquery/x/PrometheusDataQuery_types.gen";
import type * as Stat from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type * as TimeSeries from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";

// JSON spells a string enum by its value ("scheme"), which TypeScript's nominal enums refuse:
// Json<T> swaps every string enum for the union of its values, and leaves the rest alone.
type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;

type PromQuery = Prometheus.PrometheusDataQuery & DataQuery;

type Typed<Kind extends string, Options, Custom = Record<string, never>> = Omit<Panel, "type" | "options" | "fieldConfig" | "targets"> & {
  type: Kind;
  options: Partial<Options>;
  fieldConfig: FieldConfigSource<Partial<Custom>>;
  targets?: PromQuery[];
};

export type AnyPanel = Json<
  | RowPanel
  | Typed<"timeseries", TimeSeries.Options, TimeSeries.FieldConfig>
  | Typed<"stat", Stat.Options>
  | Typed<"heatmap", Heatmap.Options, Heatmap.FieldConfig>
  | Typed<"alertGroups", AlertGroups.Options>
>;

export type Board = Json<Omit<Dashboard, "panels">> & { panels: AnyPanel[] };
