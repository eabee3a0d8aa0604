# P99 TTFT per class against offered load under each admission mode (E2).
# Usage: gnuplot -e "dir='sim/results/e2'" sim/plot_e2.gp  -> $dir/latency_vs_load.svg
# Reads $dir/latency_vs_load.csv (sim/run_experiments.sh). A class with no completed request
# at a load (P99 written as -1) has no point there.
set terminal svg size 1300,450 dynamic background rgb 'white' noenhanced
set output dir.'/latency_vs_load.svg'
set datafile separator ','
set datafile missing '-1.000'
set multiplot layout 1,3 title 'E2: P99 TTFT of completed requests vs offered load (x about 30 req/s of elastic + spot; guaranteed 8 req/s)'
set xlabel 'offered load factor'
set logscale y
set yrange [0.05:300]
set grid
csv = dir.'/latency_vs_load.csv'
modes = 'token_pools none request_rate token_rate dedicated request_rate_x2 token_rate_x2'
sel(m) = sprintf('< grep ,%s, %s', m, csv)
do for [c = 3:5] {
  set title (c == 3 ? 'guaranteed (SLO 2 s, dashed)' : c == 4 ? 'elastic (queue wait 5 s)' : 'spot')
  set ylabel (c == 3 ? 'P99 TTFT (s)' : '')
  if (c == 3) { set arrow 1 from 0.5, 2 to 3, 2 nohead dt 2 lc rgb 'red' } else { unset arrow 1 }
  if (c == 3) { set key top left font ',9' } else { unset key }
  plot for [m in modes] sel(m) using 1:c with linespoints lw 2 title m
}
unset multiplot
