# E5: served tokens per tenant and serving replicas over the hour, autoscaled.
# Usage: gnuplot -e "dir='sim/results/e5_autoscale'" sim/plot_e5.gp  -> $dir/replicas.svg
# Columns of timeseries.csv: t_s, 3 x tokens, 3 x share, 3 x debt, replicas, utilization,
# queued (sim/report.h), 30 s samples.
set terminal svg size 1000,600 dynamic background rgb 'white' noenhanced
set output dir.'/replicas.svg'
set datafile separator ','
set multiplot layout 2,1 title 'E5: ramp and spike with the autoscaler (start-up delay 120 s)'
set ylabel 'served tokens/s'
set key outside right
set grid
set xrange [0:3600]
name(s) = s[1:strlen(s) - 7]  # "steady_tokens" -> "steady"
plot for [i = 2:4] dir.'/timeseries.csv' using 1:(column(i) / 30) with lines lw 2 \
  title name(columnhead(i))
set ylabel 'serving replicas'
set xlabel 'virtual time (s)'
set y2label 'utilization'
set y2range [0:1.05]
set y2tics
plot dir.'/timeseries.csv' using 1:11 with steps lw 2 title 'replicas', \
     '' using 1:12 axes x1y2 with lines lw 1 title 'utilization'
unset multiplot
