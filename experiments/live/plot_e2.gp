# E2 live vs simulated: P99 TTFT per class against load, token pools and admission disabled.
# Usage: gnuplot -e "dir='experiments/live/results/e2'" experiments/live/plot_e2.gp
#   -> $dir/p99_vs_load.svg (data: $dir/p99_vs_load.dat, written by live.py e2-report)
set terminal svg size 1200,420 dynamic background rgb 'white'
set output dir.'/p99_vs_load.svg'
set multiplot layout 1,3 title 'E2: P99 TTFT (model s) vs load — live (points), simulator (lines; dashed: on the live requests)'
set logscale y
set xlabel 'load (x 30 req/s for elastic + spot)'
set ylabel 'P99 TTFT, s'
set grid
set key inside left top Left reverse font ',8' noenhanced
set xrange [0.3:3.2]
do for [i=0:2] {
  set title word('guaranteed elastic spot', i+1)
  if (i > 0) { unset key }
  plot dir.'/p99_vs_load.dat' index i using 1:2 with points pt 7 ps 1.2 lc rgb '#1f77b4' title 'token pools, live', \
       '' index i using 1:3 with lines lw 2 lc rgb '#1f77b4' title 'token pools, sim', \
       '' index i using 1:4 with points pt 5 ps 1.2 lc rgb '#d62728' title 'none, live', \
       '' index i using 1:5 with lines lw 2 lc rgb '#d62728' title 'none, sim', \
       '' index i using 1:6 with lines dt 2 lw 2 lc rgb '#1f77b4' title 'token pools, sim on the live requests', \
       '' index i using 1:7 with lines dt 2 lw 2 lc rgb '#d62728' title 'none, sim on the live requests'
}
unset multiplot
