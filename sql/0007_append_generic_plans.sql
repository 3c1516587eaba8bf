-- append_events runs the same few statements for every append; with the default plan_cache_mode PostgreSQL may plan
-- them again at each call (custom plans), which was most of its planning time under load. Its statements are index
-- lookups by stream id and one INSERT: a generic plan is as good for every parameter.
ALTER FUNCTION tollgate.append_events(text[], bigint[], int[], text[], jsonb[], jsonb[]) SET plan_cache_mode = force_generic_plan;
