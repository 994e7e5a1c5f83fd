{#-
  Generic data test: the combination of `combination_of_columns` is unique in
  `model` (e.g. the composite key (date_start, ad_id) of raw_facebook.ad_statistics).
  dbt semantics: the query returns the failing rows, one per duplicated combination,
  with the number of rows sharing it; the test passes when it returns none.
  Rows whose combination contains a null take part like any other value (two rows
  with the same nulls are duplicates), as with dbt_utils' test of the same name.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select
    {% for column in combination_of_columns -%}
    {{ column }},
    {% endfor -%}
    count(*) as n_records
from {{ model }}
group by {% for column in combination_of_columns %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
having count(*) > 1
{% endtest %}
