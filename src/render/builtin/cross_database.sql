{#- dbt's cross-database macros (the `dbt` namespace), as dbt-postgres 1.9 emits
    them. Each public name dispatches (adapter.dispatch(name, 'dbt')) so a project
    or package can provide its own postgres__/default__ version; whitespace is
    kept where dbt's output has it, since compiled SQL is compared with it. -#}

{#- Types. -#}
{%- macro type_string() -%}{{ return(adapter.dispatch('type_string', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_string() -%}{{ return('TEXT') }}{%- endmacro -%}
{%- macro type_timestamp() -%}{{ return(adapter.dispatch('type_timestamp', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_timestamp() -%}{{ return('timestamp') }}{%- endmacro -%}
{%- macro type_float() -%}{{ return(adapter.dispatch('type_float', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_float() -%}{{ return('float') }}{%- endmacro -%}
{%- macro type_numeric() -%}{{ return(adapter.dispatch('type_numeric', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_numeric() -%}{{ return('numeric(28,6)') }}{%- endmacro -%}
{%- macro type_bigint() -%}{{ return(adapter.dispatch('type_bigint', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_bigint() -%}{{ return('bigint') }}{%- endmacro -%}
{%- macro type_int() -%}{{ return(adapter.dispatch('type_int', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_int() -%}{{ return('integer') }}{%- endmacro -%}
{%- macro type_boolean() -%}{{ return(adapter.dispatch('type_boolean', 'dbt')()) }}{%- endmacro -%}
{%- macro default__type_boolean() -%}{{ return('boolean') }}{%- endmacro -%}

{#- Casts, strings, hashing. -#}
{%- macro cast(field, type) -%}{{ return(adapter.dispatch('cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__cast(field, type) %} cast({{ field }} as {{ type }}) {% endmacro -%}
{%- macro safe_cast(field, type) -%}{{ return(adapter.dispatch('safe_cast', 'dbt')(field, type)) }}{%- endmacro -%}
{%- macro default__safe_cast(field, type) %} cast({{ field }} as {{ type }}) {% endmacro -%}
{%- macro cast_bool_to_text(field) %} {{ adapter.dispatch('cast_bool_to_text', 'dbt')(field) }} {% endmacro -%}
{%- macro default__cast_bool_to_text(field) %} cast({{ field }} as {{ dbt.type_string() }}) {% endmacro -%}
{%- macro concat(fields) -%}{{ return(adapter.dispatch('concat', 'dbt')(fields)) }}{%- endmacro -%}
{%- macro default__concat(fields) -%}{{ fields | join(' || ') }}{%- endmacro -%}
{%- macro hash(field) -%}{{ return(adapter.dispatch('hash', 'dbt')(field)) }}{%- endmacro -%}
{%- macro default__hash(field) -%}md5(cast({{ field }} as {{ dbt.type_string() }})){%- endmacro -%}
{%- macro length(expression) -%}{{ return(adapter.dispatch('length', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__length(expression) %} length( {{ expression }} ){%- endmacro -%}
{%- macro position(substring_text, string_text) -%}{{ return(adapter.dispatch('position', 'dbt')(substring_text, string_text)) }}{%- endmacro -%}
{%- macro default__position(substring_text, string_text) %} position( {{ substring_text }} in {{ string_text }} ){%- endmacro -%}
{%- macro replace(field, old_chars, new_chars) -%}{{ return(adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars)) }}{%- endmacro -%}
{%- macro default__replace(field, old_chars, new_chars) %} replace( {{ field }}, {{ old_chars }}, {{ new_chars }} ) {% endmacro -%}
{%- macro right(string_text, length_expression) -%}{{ return(adapter.dispatch('right', 'dbt')(string_text, length_expression)) }}{%- endmacro -%}
{%- macro default__right(string_text, length_expression) %} right( {{ string_text }}, {{ length_expression }} ){%- endmacro -%}
{%- macro split_part(string_text, delimiter_text, part_number) -%}{{ return(adapter.dispatch('split_part', 'dbt')(string_text, delimiter_text, part_number)) }}{%- endmacro -%}
{%- macro default__split_part(string_text, delimiter_text, part_number) %} split_part( {{ string_text }}, {{ delimiter_text }}, {{ part_number }} ) {% endmacro -%}
{%- macro _split_part_negative(string_text, delimiter_text, part_number) %} split_part( {{ string_text }}, {{ delimiter_text }}, length({{ string_text }}) - length( replace({{ string_text }}, {{ delimiter_text }}, '') ) + 2 + {{ part_number }} ) {% endmacro -%}
{%- macro postgres__split_part(string_text, delimiter_text, part_number) %} {% if part_number >= 0 %} {{ dbt.default__split_part(string_text, delimiter_text, part_number) }} {% else %} {{ _split_part_negative(string_text, delimiter_text, part_number) }} {% endif %} {% endmacro -%}
{%- macro string_literal(value) -%}{{ return(adapter.dispatch('string_literal', 'dbt')(value)) }}{%- endmacro -%}
{%- macro default__string_literal(value) -%}'{{ value }}'{%- endmacro -%}
{%- macro escape_single_quotes(expression) -%}{{ return(adapter.dispatch('escape_single_quotes', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__escape_single_quotes(expression) -%}{{ expression | replace("'", "''") }}{%- endmacro -%}
{%- macro equals(expr1, expr2) -%}{{ return(adapter.dispatch('equals', 'dbt')(expr1, expr2)) }}{%- endmacro -%}
{%- macro default__equals(expr1, expr2) -%}({{ expr1 }} = {{ expr2 }}) {% endmacro -%}

{#- Aggregates. -#}
{%- macro any_value(expression) -%}{{ return(adapter.dispatch('any_value', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__any_value(expression) -%}any_value({{ expression }}){%- endmacro -%}
{%- macro postgres__any_value(expression) -%}min({{ expression }}){%- endmacro -%}
{%- macro bool_or(expression) -%}{{ return(adapter.dispatch('bool_or', 'dbt')(expression)) }}{%- endmacro -%}
{%- macro default__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro -%}
{%- macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}{{ return(adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num)) }}{%- endmacro -%}
{%- macro postgres__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
{%- if limit_num -%} array_to_string( (array_agg( {{ measure }} {% if order_by_clause -%}{{ order_by_clause }}{%- endif %} ))[1:{{ limit_num }}], {{ delimiter_text }} )
{%- else %} string_agg( {{ measure }}, {{ delimiter_text }} {% if order_by_clause -%}{{ order_by_clause }}{%- endif %} )
{%- endif -%}
{%- endmacro -%}

{#- Arrays. -#}
{%- macro array_append(array, new_element) -%}{{ return(adapter.dispatch('array_append', 'dbt')(array, new_element)) }}{%- endmacro -%}
{%- macro default__array_append(array, new_element) -%}array_append({{ array }}, {{ new_element }}){%- endmacro -%}
{%- macro array_concat(array_1, array_2) -%}{{ return(adapter.dispatch('array_concat', 'dbt')(array_1, array_2)) }}{%- endmacro -%}
{%- macro default__array_concat(array_1, array_2) -%}array_cat({{ array_1 }}, {{ array_2 }}){%- endmacro -%}
{%- macro array_construct(inputs=[], data_type='integer') -%}{{ return(adapter.dispatch('array_construct', 'dbt')(inputs, data_type)) }}{%- endmacro -%}
{%- macro default__array_construct(inputs, data_type) -%}
{% if inputs | length > 0 %} array[ {{ inputs | join(' , ') }} ] {% else %} array[]::{{ data_type }}[] {% endif %}
{%- endmacro -%}

{#- Dates and times. -#}
{%- macro current_timestamp() -%}{{ adapter.dispatch('current_timestamp', 'dbt')() }}{%- endmacro -%}
{%- macro postgres__current_timestamp() -%}now(){%- endmacro -%}
{%- macro current_timestamp_backcompat() -%}{{ return(adapter.dispatch('current_timestamp_backcompat', 'dbt')()) }}{%- endmacro -%}
{%- macro postgres__current_timestamp_backcompat() %} current_timestamp::{{ dbt.type_timestamp() }} {% endmacro -%}
{%- macro current_timestamp_in_utc_backcompat() -%}{{ return(adapter.dispatch('current_timestamp_in_utc_backcompat', 'dbt')()) }}{%- endmacro -%}
{%- macro postgres__current_timestamp_in_utc_backcompat() %} (current_timestamp at time zone 'utc')::{{ dbt.type_timestamp() }} {% endmacro -%}
{%- macro date_trunc(datepart, date) -%}{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}{%- endmacro -%}
{%- macro default__date_trunc(datepart, date) -%}date_trunc('{{ datepart }}', {{ date }}){%- endmacro -%}
{%- macro dateadd(datepart, interval, from_date_or_timestamp) -%}{{ return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) }}{%- endmacro -%}
{%- macro postgres__dateadd(datepart, interval, from_date_or_timestamp) %} {{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }})) {% endmacro -%}
{%- macro datediff(first_date, second_date, datepart) -%}{{ return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) }}{%- endmacro -%}
{%- macro postgres__datediff(first_date, second_date, datepart) -%}
{%- set a, b = first_date, second_date -%}
{% if datepart == 'year' %} (date_part('year', ({{ b }})::date) - date_part('year', ({{ a }})::date))
{% elif datepart == 'quarter' %} ({{ dbt.datediff(a, b, 'year') }} * 4 + date_part('quarter', ({{ b }})::date) - date_part('quarter', ({{ a }})::date))
{% elif datepart == 'month' %} ({{ dbt.datediff(a, b, 'year') }} * 12 + date_part('month', ({{ b }})::date) - date_part('month', ({{ a }})::date))
{% elif datepart == 'day' %} (({{ b }})::date - ({{ a }})::date)
{% elif datepart == 'week' %} ({{ dbt.datediff(a, b, 'day') }} / 7 + case when date_part('dow', ({{ a }})::timestamp) <= date_part('dow', ({{ b }})::timestamp) then case when {{ a }} <= {{ b }} then 0 else -1 end else case when {{ a }} <= {{ b }} then 1 else 0 end end)
{% elif datepart == 'hour' %} ({{ dbt.datediff(a, b, 'day') }} * 24 + date_part('hour', ({{ b }})::timestamp) - date_part('hour', ({{ a }})::timestamp))
{% elif datepart == 'minute' %} ({{ dbt.datediff(a, b, 'hour') }} * 60 + date_part('minute', ({{ b }})::timestamp) - date_part('minute', ({{ a }})::timestamp))
{% elif datepart == 'second' %} ({{ dbt.datediff(a, b, 'minute') }} * 60 + floor(date_part('second', ({{ b }})::timestamp)) - floor(date_part('second', ({{ a }})::timestamp)))
{% elif datepart == 'millisecond' %} ({{ dbt.datediff(a, b, 'minute') }} * 60000 + floor(date_part('millisecond', ({{ b }})::timestamp)) - floor(date_part('millisecond', ({{ a }})::timestamp)))
{% elif datepart == 'microsecond' %} ({{ dbt.datediff(a, b, 'minute') }} * 60000000 + floor(date_part('microsecond', ({{ b }})::timestamp)) - floor(date_part('microsecond', ({{ a }})::timestamp)))
{% else %} {{ exceptions.raise_compiler_error("datediff: datepart '" ~ datepart ~ "' is not supported on PostgreSQL") }}
{% endif %}
{%- endmacro -%}
{%- macro last_day(date, datepart) -%}{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}{%- endmacro -%}
{%- macro default_last_day(date, datepart) -%}cast( {{ dbt.dateadd('day', '-1', dbt.dateadd(datepart, '1', dbt.date_trunc(datepart, date))) }} as date){%- endmacro -%}
{%- macro default__last_day(date, datepart) -%}{{ dbt.default_last_day(date, datepart) }}{%- endmacro -%}
{%- macro postgres__last_day(date, datepart) -%}
{%- if datepart == 'quarter' -%} -- postgres dateadd does not support quarter interval.
 cast( {{ dbt.dateadd('day', '-1', dbt.dateadd('month', '3', dbt.date_trunc(datepart, date))) }} as date)
{%- else -%}{{ dbt.default_last_day(date, datepart) }}{%- endif -%}
{%- endmacro -%}

{#- Set operators and series. -#}
{%- macro except() -%}{{ return(adapter.dispatch('except', 'dbt')()) }}{%- endmacro -%}
{%- macro default__except() %} except {% endmacro -%}
{%- macro intersect() -%}{{ return(adapter.dispatch('intersect', 'dbt')()) }}{%- endmacro -%}
{%- macro default__intersect() %} intersect {% endmacro -%}
{%- macro get_powers_of_two(upper_bound) -%}{{ return(adapter.dispatch('get_powers_of_two', 'dbt')(upper_bound)) }}{%- endmacro -%}
{%- macro default__get_powers_of_two(upper_bound) -%}
{%- if upper_bound <= 0 %}{{ exceptions.raise_compiler_error("upper bound must be positive") }}{% endif -%}
{%- for i in range(1, 100) if upper_bound <= 2 ** i -%}{%- if loop.first -%}{{ return(i) }}{%- endif -%}{%- endfor -%}
{%- endmacro -%}
{%- macro generate_series(upper_bound) -%}{{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}{%- endmacro -%}
{%- macro default__generate_series(upper_bound) -%}
{%- set n = dbt.get_powers_of_two(upper_bound) %} with p as ( select 0 as generated_number union all select 1 ), unioned as ( select
{% for i in range(n) %} p{{ i }}.generated_number * power(2, {{ i }}) {% if not loop.last %} + {% endif %}{% endfor %} + 1 as generated_number from
{% for i in range(n) %} p as p{{ i }} {% if not loop.last %} cross join {% endif %}{% endfor %} ) select * from unioned where generated_number <= {{ upper_bound }} order by generated_number
{% endmacro -%}
