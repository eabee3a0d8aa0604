# E3 live vs simulated: served-token shares per 10 s interval.
# Usage: gnuplot -e "dir='experiments/live/results/e3'; fail=60; back=150; join=180" \
#          experiments/live/plot_e3.gp   -> $dir/shares.svg (data: $dir/shares.csv)
set terminal svg size 1000,650 dynamic background rgb 'white'
set output dir.'/shares.svg'
set datafile separator ','
set datafile missing 'NaN'
set multiplot layout 3,1 title sprintf('E3 live vs simulator: replica killed at %g s, back at %g s; analytics joins at %g s', fail, back, join)
set yrange [0:1]
if (!exists('end')) end = 330
set xrange [0:end]
set grid
set key outside right font ',9'
set arrow 1 from fail, graph 0 to fail, graph 1 nohead dt 2
set arrow 2 from back, graph 0 to back, graph 1 nohead dt 2
set arrow 3 from join, graph 0 to join, graph 1 nohead dt 2
names = 'elastic-copilot elastic-synth analytics-reports'
do for [i=1:3] {
  set ylabel word(names, i)
  if (i == 3) { set xlabel 'time (s)' }
  plot dir.'/shares.csv' using 1:(column(1+i)) with lines lw 2 lc rgb '#555555' title 'simulator', \
       '' using 1:(column(4+i)) with linespoints pt 7 ps 0.6 lw 2 lc rgb '#1f77b4' title 'live (rows)', \
       '' using 1:(column(7+i)) with lines dt 3 lw 2 lc rgb '#d62728' title 'live (admin)', \
       '' using 1:(column(10+i)) with lines dt 2 lw 1 lc rgb '#2ca02c' title 'simulator on the live requests'
}
unset multiplot
