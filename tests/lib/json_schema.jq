# The shape of a JSON answer, as one line per key path: object keys joined by "/", array
# elements as "[]", and the keys of maps whose keys are data (session ids, paths, times,
# member ids) as "*". Two answers of the same shape print the same lines whatever their values.
def data_maps: ["expiry_time_to_session_ids", "session_id_to_ephemeral_paths",
                "session_id_to_watched_paths", "path_to_session_ids", "current_config"];
[paths
 | . as $p
 | [range(0; length) as $i
    | if ($p[$i] | type) == "number" then "[]"
      elif $i > 0 and (data_maps | index([$p[$i - 1]])) then "*"
      else $p[$i] end]
 | join("/")]
| unique[]
